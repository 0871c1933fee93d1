"""The console script as an operator runs it: a bad office file, a standalone emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from workers.devstack import free_port

CLI = [sys.executable, "-m", "workers.cli"]


def test_worker_refuses_a_bad_office_file_listing_every_problem(tmp_path: Path) -> None:
    office_file = tmp_path / "offices.toml"
    office_file.write_text(
        """
[[office]]
id = 2
name = "Oslo"
invoice_mode = "sometimes"
qondor = { subscription_key = "inline-secret" }
tripletex = { consumer_token = { env = "NOT_SET_ANYWHERE" }, employee_token = { env = "NOT_SET_EITHER" } }

[[office]]
id = 3
name = "Bergen"
article_mapping = { "3000" = { vat_type = "3", product = "P1" } }
qondor = { subscription_key = { env = "NOT_SET_ANYWHERE" } }
"""
    )
    env = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1"}  # never reached: the file is checked first
    done = subprocess.run([*CLI, "worker", "--config", str(office_file)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 2
    problems = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert any("office 2 (Oslo) -> invoice_mode" in p for p in problems)
    assert any("office 2 (Oslo) -> qondor.subscription_key" in p and "never written inline" in p for p in problems)
    assert any("office 3 (Bergen) -> article_mapping.3000" in p for p in problems)
    assert any("office 3 (Bergen)" in p and "tripletex" in p for p in problems)
    assert "inline-secret" not in done.stderr + done.stdout


def test_emulator_command_serves_the_tripletex_emulator(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*CLI, "emulator", "tripletex", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                state = httpx.get(f"http://127.0.0.1:{port}/_admin/state", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert state.status_code == 200
        session = httpx.put(
            f"http://127.0.0.1:{port}/v2/token/session/:create",
            params={"consumerToken": "wrong", "employeeToken": "wrong", "expirationDate": "2099-01-01"},
        )
        assert session.status_code == 422 and session.json()["code"] == 18000
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _serve(args: list[str], probe: str) -> tuple[subprocess.Popen[str], httpx.Response]:
    """Start ``qondor-sync emulator ...`` and wait until ``probe`` (a path) answers."""
    port = free_port()
    proc = subprocess.Popen([*CLI, "emulator", *args, "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            return proc, httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise
            time.sleep(0.2)


def test_emulator_command_serves_the_24sevenoffice_emulator_and_its_wsdls() -> None:
    proc, wsdl = _serve(["finago"], "/authenticate/v001/authenticate.asmx?WSDL")
    try:
        assert wsdl.status_code == 200 and "wsdl:definitions" in wsdl.text
        assert "Login" in wsdl.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_emulator_command_seeds_the_demo_offices_the_24sevenoffice_one_without_references() -> None:
    proc, state = _serve(["qondor", "--seed", "demo"], "/_admin/state")
    try:
        customers = {c["id"]: c for c in state.json()["customers"]}
        assert set(customers) == {2001, 2002, 2003, 3001, 3002, 3003}
        assert all(customers[i].get("externalReference") for i in (2001, 2002, 2003))
        assert not any(customers[i].get("externalReference") for i in (3001, 3002, 3003))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_list_filters_by_accounting_system() -> None:
    from workers.cli import build_parser

    args = build_parser().parse_args(["list", "--system", "finago", "--state", "awaiting_payment"])
    assert args.system == "finago"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["list", "--system", "visma"])
