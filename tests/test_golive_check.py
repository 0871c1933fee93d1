"""The go-live check for every registered accounting system: a well set-up office passes (exit 0 from the CLI), and
each problem that would stop its first sync, seeded the way it happens (a setting pointing at nothing, a mapping
with the wrong VAT, a status or department missing in the accounting system, duplicate customers in Qondor,
refused credentials), is found with its fix and makes the CLI exit 1. Nothing is written by the check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from test_reconcile import ATTENTION, qondor_items_not_polled

from accounting.adapter import Finding
from accounting.finago.emulator import seed as finago_seed
from accounting.golive import OfficeTools, blocking, golive_check
from accounting.registry import SYSTEMS
from domain.config import AccountingSystem
from emulators.qondor.sample import bad_items, merge_seeds, sample_office_data, without_customer_references
from harness import Stack, every_system, new_stack
from workers import cli


def transports(stack: Stack) -> dict[str, httpx.AsyncBaseTransport]:
    return {"qondor": httpx.ASGITransport(app=stack.qondor_app),
            stack.system.value: httpx.ASGITransport(app=stack.accounting_asgi)}


async def check(stack: Stack) -> list[Finding]:
    return await golive_check(OfficeTools.open(stack.config, stack.office_id, stack.store, transports(stack)))


def failed(findings: list[Finding], check_name: str) -> list[Finding]:
    return [f for f in findings if f.check == check_name and not f.ok]


def broken_office(system: AccountingSystem) -> dict[str, Any]:
    """Office settings that name what the accounting system does not have: card payment type or method, mapped
    VAT code or products, department, misc product."""
    if system is AccountingSystem.TRIPLETEX:
        office = SYSTEMS[system].emulator_office("http://tripletex.test")
        mapping = office["article_mapping"] | {"4000": {"vat_type": "99"}, "4100": {"product": "P-404"}}
        return {"card_payment_type_id": 424242, "article_mapping": mapping}
    accounting = SYSTEMS[system].emulator_office("http://finago.test")["accounting"]
    mapping = accounting["article_mapping"] | {"4000": {"product_id": 424242}}
    return {"accounting": accounting | {"department_id": 99, "misc_product_id": 99, "misc_product_category_id": 99,
                                        "card_payment_method_id": 99, "article_mapping": mapping}}


EXPECTED: dict[AccountingSystem, dict[str, str]] = {
    # check name -> a word of the fix
    AccountingSystem.TRIPLETEX: {"card payment type": "card_payment_type_id", "article 4000": "article_mapping",
                                 "article 4100": "Create the product"},
    AccountingSystem.FINAGO: {"department": "department_id", "misc product": "misc_product_id",
                              "card payment method": "card_payment_method_id", "article 4000": "article_mapping",
                              "project status Avsluttet": "Create the project status"},
}


def without_closed_status(stack: Stack) -> None:
    """An administrator removed the project status "Avsluttet" in 24SevenOffice."""
    if stack.system is AccountingSystem.FINAGO:
        with stack.accounting.lock:
            stack.accounting.tables["project_statuses"].pop(finago_seed.STATUS_CLOSED_ID)


@every_system
async def test_a_well_set_up_office_passes_and_each_problem_is_found_with_its_fix(
    temporal_env: WorkflowEnvironment, tmp_path: Path, system: str
) -> None:
    good = new_stack(temporal_env.client, tmp_path, system=system)
    try:
        findings = await check(good)
        assert blocking(findings) == [], blocking(findings)
        assert {"qondor credentials", "credentials", "duplicate organisation numbers"} <= {f.check for f in findings}
        assert all(f.ok for f in findings if f.check in ("credentials", "qondor credentials"))
    finally:
        await good.close()

    def seed(office_id: int) -> dict[str, Any]:
        bad = bad_items(office_id)
        return without_customer_references(merge_seeds(
            sample_office_data(office_id), bad["shared_org_number"], bad["unmapped_article"],
            qondor_items_not_polled(office_id),
        ))

    stack = new_stack(temporal_env.client, tmp_path, system=system, seed={}, **broken_office(AccountingSystem(system)))
    try:
        stack.qondor.seed(seed(stack.office_id))
        without_closed_status(stack)
        before = stack.qondor.snapshot()["invoices"]
        findings = await check(stack)
        for name, fix in EXPECTED[stack.system].items():
            [found] = failed(findings, name)
            assert found.blocks and fix in (found.fix or ""), found
        # Two active Qondor customers share an organisation number: their invoices would fail.
        [twins] = failed(findings, "duplicate organisation numbers")
        assert "9002" in twins.message and "9003" in twins.message and "Merge" in (twins.fix or "")
        # The waiting invoice whose line charges 15 % on the 25 % article: the sync's own VAT rule finds it.
        base = stack.office_id * 1000
        [vat] = failed(findings, f"invoice {base + ATTENTION}")
        assert vat.blocks and "15 %" in vat.message and "resync" in (vat.fix or "")
        # An unmapped article stops Tripletex; 24SevenOffice books it to the misc product (found missing above).
        unmapped = failed(findings, "invoice 9004")
        if stack.system is AccountingSystem.TRIPLETEX:
            assert unmapped and "9999" in unmapped[0].message and "article_mapping" in (unmapped[0].fix or "")
        else:
            assert all("misc product" in f.message for f in unmapped)
        assert stack.qondor.snapshot()["invoices"] == before  # nothing written to Qondor
        assert stack.store.links(stack.office_id) == []
    finally:
        await stack.close()


@every_system
async def test_refused_credentials_are_the_only_finding_and_the_cli_exits_1(
    temporal_env: WorkflowEnvironment, tmp_path: Path, system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = new_stack(temporal_env.client, tmp_path, system=system, loopback=True)
    try:
        path = tmp_path / "offices.yaml"
        path.write_text(json.dumps({"offices": [stack.office().model_dump(mode="json", exclude_none=True)]}))
        run: Callable[[], Any] = lambda: cli.COMMANDS["check"](  # noqa: E731
            cli.build_parser().parse_args(["check", "--office", str(stack.office_id), "--config", str(path)])
        )
        monkeypatch.setenv("QONDOR_SYNC_DB_URL", f"sqlite:///{tmp_path}/cli.db")
        assert await run() == 0  # the sample office on the emulators: nothing stops its first sync
        for env in SYSTEMS[stack.system].emulator_secrets:
            monkeypatch.setenv(env, "refused")
        findings = await check(stack)
        [refused] = failed(findings, "credentials")
        assert refused.blocks and refused.fix
        assert [f.check for f in findings] == ["qondor credentials", "credentials"]
        assert await run() == 1
        monkeypatch.setenv("QONDOR_SYNC_DEMO_QONDOR_KEY", "refused")  # the office's Qondor subscription key
        [qondor] = await check(stack)
        assert (qondor.check, qondor.ok, qondor.blocks) == ("qondor credentials", False, True)
        assert "subscription_key" in (qondor.fix or "")
    finally:
        await stack.close()
