"""The designed Sale and Cost API (docs/qondor-actuals-api.md) through the client against the emulator: the six
operations of both controllers, the rules that refuse a bad write, and the answers a retry relies on (a second
create with one external reference is refused; a delete of a record already gone is answered 404)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from clients.qondor import QondorClient, QondorNotFoundError, QondorValidationError
from domain.actuals import ActualKind
from domain.qondor import ActualPaymentStatus, QondorCost, QondorSale
from emulators.qondor import QondorState


def cost(reference: str = "tripletex:supplierInvoice:1:project:2301", project_id: int = 2301,
         incl: str = "1250.00") -> QondorCost:
    return QondorCost(project_id=project_id, external_reference=reference, supplier_name="Lydteknikk AS",
                      invoice_number="F-1", invoice_date=date(2026, 11, 2), due_date=date(2026, 11, 16),
                      amount_excl_vat=Decimal("1000.00"), vat_amount=Decimal("250.00"),
                      amount_incl_vat=Decimal(incl))


async def test_create_read_update_delete_a_cost(qondor: QondorClient, state: QondorState) -> None:
    created = await qondor.create_actual(ActualKind.COST, cost())

    assert created.id is not None and created.payment_status_text == "Outstanding"
    assert (await qondor.get_actual(ActualKind.COST, created.id)).amount_incl_vat == Decimal("1250.00")
    found = await qondor.get_actual_by_external_reference(ActualKind.COST, created.external_reference)
    assert found is not None and found.id == created.id
    assert [c.id for c in await qondor.get_actuals_for_project(ActualKind.COST, 2301)] == [created.id]
    assert await qondor.get_actuals_for_project(ActualKind.SALE, 2301) == []

    await qondor.update_actual(ActualKind.COST, cost().model_copy(
        update={"id": created.id, "payment_status": ActualPaymentStatus.PAID, "amount_outstanding": Decimal(0)}))
    stored = state.actual_records("Cost")
    assert [(c["id"], c["paymentStatus"], c["paymentStatusText"]) for c in stored] == [(created.id, 2, "Paid")]

    assert await qondor.delete_actual(ActualKind.COST, created.id) is True
    assert await qondor.delete_actual(ActualKind.COST, created.id) is False, "a repeat after a lost answer is harmless"
    assert state.actual_records("Cost") == []
    assert await qondor.get_actual_by_external_reference(ActualKind.COST, created.external_reference) is None


async def test_a_sale_carries_its_customer(qondor: QondorClient, state: QondorState) -> None:
    sale = QondorSale(project_id=2302, external_reference="24so:sale:transaction:7:project:2302",
                      customer_name="Fjord Konferanse AS", amount_excl_vat=Decimal("100"), vat_amount=Decimal("25"),
                      amount_incl_vat=Decimal("125"))
    created = await qondor.create_actual(ActualKind.SALE, sale)

    assert isinstance(created, QondorSale) and created.customer_name == "Fjord Konferanse AS"
    assert [s["projectId"] for s in state.actual_records("Sale")] == [2302]
    assert state.actual_records("Cost") == [], "the controllers keep their own records"


@pytest.mark.parametrize(("body", "field"), [
    (cost(project_id=999_999), "ProjectId"),
    (cost(incl="1250.01"), "AmountInclVat"),
    (cost(reference=" "), "ExternalReference"),
])
async def test_a_bad_write_is_refused_with_the_field(qondor: QondorClient, state: QondorState, body: QondorCost,
                                                     field: str) -> None:
    with pytest.raises(QondorValidationError) as refused:
        await qondor.create_actual(ActualKind.COST, body)

    assert field in refused.value.errors
    assert state.actual_records("Cost") == []


async def test_one_external_reference_is_one_record(qondor: QondorClient, state: QondorState) -> None:
    first = await qondor.create_actual(ActualKind.COST, cost())
    other = await qondor.create_actual(ActualKind.COST, cost(reference="other"))

    with pytest.raises(QondorValidationError) as refused:
        await qondor.create_actual(ActualKind.COST, cost())
    assert "ExternalReference" in refused.value.errors
    with pytest.raises(QondorValidationError):
        await qondor.update_actual(ActualKind.COST, cost().model_copy(update={"id": other.id}))
    with pytest.raises(QondorNotFoundError):
        await qondor.update_actual(ActualKind.COST, cost().model_copy(update={"id": 424242}))
    assert [c["id"] for c in state.actual_records("Cost")] == [first.id, other.id]
