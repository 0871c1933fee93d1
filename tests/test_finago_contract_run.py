"""The 24SevenOffice contract over a whole run: every SOAP request the worker sends to 24SevenOffice and every
response it gets is valid against the XML Schemas of the shipped WSDLs (``tests/finago/finago_contract.py``:
libxml2's validator, independent of zeep, which builds and parses the messages).

The worker's 24SevenOffice transport is wrapped by the recording transport, so what is checked is exactly what
the product put on the wire: the ensure steps (company lookups and saves, the consumer, project reads and
saves, project statuses), the catalogue reads, offers, the card payment, the credit order, the lookup by
reference after a lost response, a session renewal (HasSession, Login), the workflows' payment reads and the
payment sweep's reads. The Tripletex equivalent is ``test_contract_run.py``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
from finago.finago_contract import RecordingTransport, validate_exchange
from temporalio.testing import WorkflowEnvironment

from domain.qondor import QueueStatus
from domain.sync import OfficeRunInput, SyncState
from harness import new_stack
from workflows.office import PaymentSweep

OFFER_1, OFFER_2, FORM, BOOKING, CARD, CREDIT = 501, 502, 503, 504, 505, 506


async def test_a_whole_run_conforms_to_the_24sevenoffice_wsdls(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    stack = new_stack(temporal_env.client, tmp_path, system="finago", payment_fallback_check_days=3 / 86400)
    recording = RecordingTransport(httpx.ASGITransport(app=stack.accounting_asgi))
    stack.start_worker({"qondor": httpx.ASGITransport(app=stack.qondor_app), "finago": recording})
    books, base = stack.books, stack.office_id * 1000
    try:
        # The first offer's SaveInvoices loses its answer: the retry looks the order up by ReferenceNumber.
        stack.accounting.faults.add(books.drops["invoice"].rule | {"mode": "drop_after_commit", "times": 1})
        await stack.discover()
        for n in (OFFER_1, OFFER_2, FORM, BOOKING, CREDIT):
            await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT)
        await stack.wait_for_state(base + CARD, SyncState.PAID)
        assert books.duplicates() == {}

        # Every session dies; finance invoices the form's order and the customer pays; the sweep reports it.
        stack.accounting.expire_sessions()
        invoiced = books.invoice(books.one(base + FORM))
        await books.pay(invoiced)
        await stack.client.execute_workflow(
            PaymentSweep.run,
            OfficeRunInput(office_id=stack.office_id, accounting_system="finago"),
            id=f"test-contract-sweep-{stack.office_id}",
            task_queue=stack.queues.workflow,
        )
        await stack.wait_for_qondor(base + FORM, QueueStatus.PAID)
    finally:
        await stack.close()

    checked = Counter(validate_exchange(exchange) for exchange in recording.exchanges)
    operations = Counter(operation for operation, _ in checked.elements())
    for expected in ("Login", "HasSession", "GetCompanies", "SaveCompanies", "GetSingleProject", "SaveProject",
                     "GetProjectStatuses", "GetProducts", "GetCategories", "SaveInvoices", "GetInvoices",
                     "GetTransactions"):
        assert operations[expected] >= 1, f"the run made no {expected} call: {dict(operations)}"
    assert operations["SaveInvoices"] == 5, "six orders, one of whose answers was lost (found, not sent again)"
    assert checked[("HasSession", "result")] >= 1 and checked[("Login", "result")] >= 2, "the session renewal"
    assert any(kind == "fault" for _, kind in checked), "the expired session's fault"
