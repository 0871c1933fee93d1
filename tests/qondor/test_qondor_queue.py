"""The enforced queue state machine, asserted on the emulator's stored state and call log."""

from __future__ import annotations

import httpx
import pytest

from clients.qondor import QondorClient, QondorNotFoundError, QondorValidationError
from domain.qondor import QueueStatus, SetAsFailed, SetAsPaid, SetAsProcessed
from emulators.qondor import QondorState


async def test_happy_path_processed_then_paid(qondor: QondorClient, state: QondorState) -> None:
    await qondor.set_as_processed(SetAsProcessed(invoice_id=2501, external_invoice_number="10001"))
    assert [i.id for i in await qondor.get_unprocessed_invoices(2)] == [2502, 2503, 2504, 2505, 2506]
    await qondor.set_as_paid(SetAsPaid(invoice_id=2501))
    invoice = state.invoice_model(2501)
    assert invoice.status is QueueStatus.PAID and invoice.status_text == "Paid"
    assert invoice.paid_amount == invoice.total_incl_vat  # defaults to the full amount
    assert [(h["status"], h["via"]) for h in state.history_of(2501)] == [
        (1, "seed"), (2, "SetAsProcessed"), (4, "SetAsPaid")]
    fetched = await qondor.get_invoice(2501)  # Processed/Paid items stay readable
    assert fetched.status is QueueStatus.PAID and fetched.external_invoice_number == "10001"


async def test_repeats_are_no_ops_and_keep_the_first_values(qondor: QondorClient, state: QondorState) -> None:
    await qondor.set_as_processed(SetAsProcessed(invoice_id=2502, external_invoice_number="A"))
    await qondor.set_as_processed(SetAsProcessed(invoice_id=2502, external_invoice_number="B"))
    await qondor.set_as_paid(SetAsPaid(invoice_id=2502))
    await qondor.set_as_paid(SetAsPaid(invoice_id=2502))
    await qondor.set_as_failed(SetAsFailed(invoice_id=2503, message="Article 9999 has no mapping."))
    await qondor.set_as_failed(SetAsFailed(invoice_id=2503, message="second message"))
    assert state.invoice_model(2502).external_invoice_number == "A"
    assert state.invoice_model(2503).failure_message == "Article 9999 has no mapping."
    assert [h["status"] for h in state.history_of(2502)] == [1, 2, 4]
    assert [h["status"] for h in state.history_of(2503)] == [1, 3]
    assert [c["outcome"] for c in state.calls_for(2502)] == ["applied", "repeat", "applied", "repeat"]
    assert [c["outcome"] for c in state.calls_for(2503)] == ["applied", "repeat"]


@pytest.mark.parametrize(("setup", "call", "message"), [
    ([], SetAsPaid(invoice_id=2501), "Invoice 2501 is Unprocessed; only Processed invoices can be set as paid."),
    (["processed"], SetAsFailed(invoice_id=2501, message="late"),
     "Invoice 2501 is Processed; only Unprocessed invoices can be set as failed."),
    (["processed", "paid"], SetAsFailed(invoice_id=2501, message="late"),
     "Invoice 2501 is Paid; only Unprocessed invoices can be set as failed."),
    (["processed", "paid"], SetAsProcessed(invoice_id=2501),
     "Invoice 2501 is Paid; it was processed before and cannot be processed again."),
    (["failed"], SetAsProcessed(invoice_id=2501), "Invoice 2501 is Failed; failed payments are final."),
    (["failed"], SetAsPaid(invoice_id=2501), "Invoice 2501 is Failed; failed payments are final."),
])
async def test_illegal_transitions_are_refused(qondor: QondorClient, state: QondorState, setup: list[str],
                                               call: SetAsProcessed | SetAsFailed | SetAsPaid, message: str) -> None:
    steps = {"processed": SetAsProcessed(invoice_id=2501), "paid": SetAsPaid(invoice_id=2501),
             "failed": SetAsFailed(invoice_id=2501, message="Customer has no organisation number.")}
    for name in setup:
        await _call(qondor, steps[name])
    before = state.invoice_model(2501)
    with pytest.raises(QondorValidationError) as caught:
        await _call(qondor, call)
    assert caught.value.status == 400 and caught.value.errors == {"InvoiceId": [message]}
    assert state.invoice_model(2501) == before  # nothing changed
    assert state.calls_for(2501)[-1]["outcome"] == "rejected"


async def _call(qondor: QondorClient, body: SetAsProcessed | SetAsFailed | SetAsPaid) -> None:
    if isinstance(body, SetAsProcessed):
        await qondor.set_as_processed(body)
    elif isinstance(body, SetAsFailed):
        await qondor.set_as_failed(body)
    else:
        await qondor.set_as_paid(body)


async def test_failed_items_never_appear_and_stay_readable(qondor: QondorClient, state: QondorState) -> None:
    await qondor.set_as_failed(SetAsFailed(invoice_id=2504, message="The booker has no e-mail address."))
    assert 2504 not in [i.id for i in await qondor.get_unprocessed_invoices()]
    assert 2504 not in [i["id"] for i in state.unprocessed(None)]
    failed = await qondor.get_invoice(2504)
    assert failed.status is QueueStatus.FAILED and failed.failure_message == "The booker has no e-mail address."
    assert failed.failed_utc is not None


async def test_unknown_invoice_is_404_and_logged(qondor: QondorClient, state: QondorState) -> None:
    with pytest.raises(QondorNotFoundError):
        await qondor.set_as_processed(SetAsProcessed(invoice_id=31337))
    assert state.calls_for(31337)[0]["outcome"] == "notFound"


async def test_failure_message_rules(raw: httpx.AsyncClient, state: QondorState) -> None:
    path = "/Invoicing/v1/Invoice/SetAsFailed"
    blank = await raw.put(path, json={"invoiceId": 2501, "message": "  "})
    too_long = await raw.put(path, json={"invoiceId": 2501, "message": "x" * 1001})
    bad_id = await raw.put(path, json={"invoiceId": "seventeen", "message": "m"})
    not_json = await raw.put(path, content=b"{", headers={"Content-Type": "application/json"})
    assert blank.json()["errors"] == {"Message": ["'Message' must not be empty."]}
    assert "traceId" not in blank.json()  # business-rule flavour
    assert too_long.json()["errors"]["Message"] == [
        "The length of 'Message' must be 1000 characters or fewer. You entered 1001 characters."]
    assert list(bad_id.json()["errors"]) == ["InvoiceId"] and bad_id.json()["traceId"]
    assert list(not_json.json()["errors"]) == ["Body"]
    assert {r.status_code for r in (blank, too_long, bad_id, not_json)} == {400}
    assert state.status_of(2501) is QueueStatus.UNPROCESSED
    assert [c["outcome"] for c in state.snapshot()["setAsCalls"]] == ["invalid"] * 4
    ok = await raw.put(path, json={"invoiceId": 2501, "message": "y" * 1000})
    assert ok.status_code == 200 and state.status_of(2501) is QueueStatus.FAILED
