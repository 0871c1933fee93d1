"""The sample data is internally consistent: sums, VAT to the øre, references, every kind, broken cases."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

from domain.qondor import Customer, InvoiceKind, Project, QondorInvoice
from emulators.qondor import QondorState
from emulators.qondor.sample import (
    ARTICLES,
    MISSING_INVOICE_ID,
    UNMAPPED_ARTICLE,
    bad_items,
    bulk_invoices,
    is_valid_org_number,
    merge_seeds,
    sample_office_data,
)


def _check_arithmetic(invoice: QondorInvoice) -> None:
    for line in invoice.lines:
        assert line.amount_excl_vat == (line.quantity * line.unit_price_excl_vat).quantize(
            Decimal("0.01"), ROUND_HALF_UP), line
        assert line.vat_amount == (line.amount_excl_vat * line.vat_percentage / 100).quantize(
            Decimal("0.01"), ROUND_HALF_UP), line
        assert line.amount_incl_vat == line.amount_excl_vat + line.vat_amount
        assert line.amount_incl_vat.as_tuple().exponent == -2  # øre
    assert invoice.total_excl_vat == sum(ln.amount_excl_vat for ln in invoice.lines)
    assert invoice.total_vat == sum(ln.vat_amount for ln in invoice.lines)
    assert invoice.total_incl_vat == sum(ln.amount_incl_vat for ln in invoice.lines)
    assert invoice.total_incl_vat == invoice.total_excl_vat + invoice.total_vat


def test_sample_is_consistent_and_has_every_kind() -> None:
    doc = sample_office_data(2)
    invoices = [QondorInvoice.model_validate(i) for i in doc["invoices"]]
    customers = {c["id"]: Customer.model_validate(c) for c in doc["customers"]}
    projects = {p["id"]: Project.model_validate(p) for p in doc["projects"]}
    assert [i.kind for i in invoices] == [InvoiceKind.CUSTOMER_OFFER_INVOICE, InvoiceKind.CUSTOMER_OFFER_INVOICE,
                                          InvoiceKind.CUSTOMER_FORM_INVOICE, InvoiceKind.BOOKING_INVOICE,
                                          InvoiceKind.CREDIT_CARD_PAYMENT, InvoiceKind.CREDIT_NOTE]
    for invoice in invoices:
        _check_arithmetic(invoice)
        assert invoice.currency == "NOK" and invoice.office_id == 2
        assert {ln.article_number for ln in invoice.lines} <= set(ARTICLES)
        assert all(ln.vat_percentage == ARTICLES[ln.article_number or ""][0] for ln in invoice.lines)
        project = projects[invoice.project_id or 0]
        assert project.project_no == invoice.project_no
        assert project.main_project_manager is not None and project.main_project_manager.email
        if invoice.kind is InvoiceKind.BOOKING_INVOICE:
            assert invoice.customer_id is None and invoice.booker is not None and invoice.booker.email
        else:
            customer = customers[invoice.customer_id or 0]
            assert is_valid_org_number(customer.organisation_number or "") and customer.invoice_email
            assert invoice.contact_person_id in [p.id for p in customer.contact_persons]
    offer_1, offer_2, _, _, card, credit = invoices
    assert (offer_1.customer_id, offer_1.project_id) == (offer_2.customer_id, offer_2.project_id)  # repeat
    assert card.card_payment is not None and card.card_payment.paid_amount == card.total_incl_vat
    assert credit.credited_invoice_id == offer_2.id and credit.total_incl_vat == -offer_2.total_incl_vat
    assert all(c.amount_incl_vat == -o.amount_incl_vat for c, o in zip(credit.lines, offer_2.lines, strict=True))
    assert len({c.organisation_number for c in customers.values()}) == len(customers)
    assert {ln.article_number for i in invoices for ln in i.lines} == set(ARTICLES)


def test_two_offices_do_not_collide() -> None:
    state = QondorState()
    state.seed(merge_seeds(sample_office_data(2), sample_office_data(3)))
    snapshot = state.snapshot()
    assert len(snapshot["invoices"]) == 12 and len(snapshot["customers"]) == 6
    assert {i["id"] for i in state.unprocessed(3)} == set(range(3501, 3507))


@pytest.mark.parametrize("repeat", [True, False])
def test_bulk_invoices(repeat: bool) -> None:
    doc = bulk_invoices(4, 40, 100_000, repeat_customers=repeat,
                        kinds=(InvoiceKind.CUSTOMER_OFFER_INVOICE, InvoiceKind.BOOKING_INVOICE,
                               InvoiceKind.CREDIT_CARD_PAYMENT))
    assert len(doc["invoices"]) == 40 and len(doc["customers"]) == (5 if repeat else 40)
    assert [i["id"] for i in doc["invoices"]] == list(range(100_000, 100_040))
    customer_ids = {c["id"] for c in doc["customers"]}
    for raw in doc["invoices"]:
        invoice = QondorInvoice.model_validate(raw)
        _check_arithmetic(invoice)
        assert invoice.customer_id in customer_ids or invoice.kind is InvoiceKind.BOOKING_INVOICE
    assert all(is_valid_org_number(c["organisationNumber"]) for c in doc["customers"])
    state = QondorState()
    assert state.seed(doc)["invoices"] == 40


def test_bad_items_are_broken_exactly_as_named() -> None:
    cases = bad_items(2, start_id=9000)
    state = QondorState()
    state.seed(merge_seeds(sample_office_data(2), *cases.values()))
    no_ids = Customer.model_validate(cases["no_org_number_no_email"]["customers"][0])
    assert no_ids.organisation_number is None and no_ids.invoice_email is None and no_ids.legal_name
    twin_a, twin_b = cases["shared_org_number"]["customers"]
    assert twin_a["organisationNumber"] == twin_b["organisationNumber"] and twin_a["officeId"] == twin_b["officeId"]
    unmapped = QondorInvoice.model_validate(cases["unmapped_article"]["invoices"][0])
    assert UNMAPPED_ARTICLE in {ln.article_number for ln in unmapped.lines} and UNMAPPED_ARTICLE not in ARTICLES
    orphan = QondorInvoice.model_validate(cases["orphan_credit_note"]["invoices"][0])
    assert orphan.kind is InvoiceKind.CREDIT_NOTE and orphan.credited_invoice_id == MISSING_INVOICE_ID
    assert orphan.total_incl_vat < 0 and MISSING_INVOICE_ID not in state.invoices
    for case in cases.values():
        _check_arithmetic(QondorInvoice.model_validate(case["invoices"][0]))
    assert [i["id"] for i in state.unprocessed(2)][-4:] == [9001, 9002, 9004, 9005]
