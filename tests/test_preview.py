"""The preview for every registered accounting system: what the sync would do for the waiting items, shown
without writing anything anywhere (the emulators' state and request logs, Qondor's queue and the store are
unchanged), and, once parties exist, that the next invoice would find them rather than make new ones."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from accounting.golive import OfficeTools
from accounting.preview import format_plans, preview
from domain.config import AccountingSystem
from domain.qondor import QueueStatus
from harness import Stack, every_system, new_stack

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506
TABLES = {AccountingSystem.TRIPLETEX: ("customer", "contact", "employee", "project", "order", "invoice"),
          AccountingSystem.FINAGO: ("companies", "projects", "orders")}
READS = re.compile(r"^(GET |POST /v2/token/session/:create$|Login$|Get|HasSession$)")
"""Calls that read (a Tripletex session token and a 24SevenOffice login are authentication, not data)."""


def tools_of(stack: Stack) -> OfficeTools:
    transports: dict[str, httpx.AsyncBaseTransport] = {
        "qondor": httpx.ASGITransport(app=stack.qondor_app),
        stack.system.value: httpx.ASGITransport(app=stack.accounting_asgi),
    }
    return OfficeTools.open(stack.config, stack.office_id, stack.store, transports)


def state_of(stack: Stack) -> dict[str, Any]:
    return {table: copy.deepcopy(stack.accounting.all(table)) for table in TABLES[stack.system]}


def qondor_writes(stack: Stack) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in stack.qondor.request_log()["requests"] if r["method"] != "GET"]


@every_system
async def test_the_preview_shows_the_plan_and_writes_nothing(
    temporal_env: WorkflowEnvironment, tmp_path: Path, system: str
) -> None:
    stack = new_stack(temporal_env.client, tmp_path, system=system)
    try:
        base = stack.office_id * 1000
        books, qondor_before = state_of(stack), stack.qondor.snapshot()["invoices"]
        plans = {p.invoice_id: p for p in await preview(tools_of(stack))}

        assert sorted(plans) == [base + n for n in (OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT)]
        offer = plans[base + OFFER_1]
        assert offer.outcome == "book"
        assert {p.label: p.action for p in offer.parties}["customer"] == "create"
        assert {p.label: p.action for p in offer.parties}["project"] == "create"
        invoice = stack.qondor.invoice_model(base + OFFER_1)
        assert offer.totals == (invoice.total_excl_vat, invoice.total_vat, invoice.total_incl_vat)
        assert [(ln.vat_percentage, ln.incl_vat) for ln in offer.lines] == [
            (ln.vat_percentage, ln.amount_incl_vat) for ln in invoice.lines]
        assert "paid at once" in (plans[base + CARD].document or "")
        assert plans[base + CREDIT].outcome == "waiting"  # its original is not booked yet
        assert "nothing was written" in format_plans(list(plans.values()))

        # Nothing was written anywhere.
        assert state_of(stack) == books
        calls = [e.call for e in stack.books.log()]
        assert calls and all(READS.match(c) for c in calls), [c for c in calls if not READS.match(c)]
        assert qondor_writes(stack) == []
        assert stack.qondor.snapshot()["invoices"] == qondor_before
        assert all(stack.qondor.status_of(i) is QueueStatus.UNPROCESSED for i in plans)
        assert stack.store.links(stack.office_id) == []

        # Once the sample is synced, the next invoice of the same customer and project finds them.
        stack.start_worker()
        await stack.discover()
        await stack.wait_for_qondor(base + FORM, QueueStatus.PROCESSED, timeout=120)
        await stack.wait_for_qondor(base + OFFER_1, QueueStatus.PROCESSED, timeout=120)
        await stack.stop_worker()
        again = copy.deepcopy(stack.qondor.invoice(base + OFFER_1)) | {"id": base + 601, "status": 1}
        for key in ("externalInvoiceNumber", "externalReference", "processedUtc"):
            again.pop(key, None)
        stack.qondor.add_invoices([again])
        books, links = state_of(stack), stack.store.links(stack.office_id)
        [repeat] = await preview(tools_of(stack), base + 601)
        assert repeat.outcome == "book"
        actions = {p.label: p.action for p in repeat.parties}
        assert actions["customer"] == "linked" and actions["project"] == "linked"
        [booked] = await preview(tools_of(stack), base + OFFER_1)
        assert booked.outcome == "already booked"
        assert state_of(stack) == books and stack.store.links(stack.office_id) == links
        assert stack.qondor.status_of(base + 601) is QueueStatus.UNPROCESSED
    finally:
        await stack.close()
