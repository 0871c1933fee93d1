"""Pure domain rules, without servers: validation, Tripletex mapping, money, fingerprints, pacing."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest

from accounting.tripletex.mapping import (
    check_office_mapping,
    customer_body,
    customer_link_key,
    is_full_credit,
    order_body,
    order_lines,
)
from clients.pacing import Pacer
from domain.config import OfficeConfig, parse_config
from domain.errors import ConfigurationError, DataError
from domain.qondor import Customer, InvoiceKind, Project, QondorInvoice, QueueStatus
from domain.rules import fingerprint, money, normalise_org_number, validate_bundle
from domain.sync import AccountingRefs, InvoiceBundle
from emulators.qondor.sample import sample_office_data
from workers.devstack import office_document

VAT = {"3": (3, Decimal(25)), "31": (31, Decimal(15)), "33": (33, Decimal(12))}


def office(**overrides: Any) -> OfficeConfig:
    doc = office_document(2, "http://q", "http://t", **overrides)
    return parse_config({"offices": [doc]}, check_secrets=False).offices[0]


def sample_bundle(kind: InvoiceKind = InvoiceKind.CUSTOMER_OFFER_INVOICE) -> InvoiceBundle:
    seed = sample_office_data(2)
    raw = next(i for i in seed["invoices"] if i["kind"] == kind)
    invoice = QondorInvoice.model_validate(raw)
    customer = next((Customer.model_validate(c) for c in seed["customers"] if c["id"] == invoice.customer_id), None)
    project = next(Project.model_validate(p) for p in seed["projects"] if p["projectNo"] == invoice.project_no)
    original = QueueStatus.PROCESSED if kind is InvoiceKind.CREDIT_NOTE else None
    return InvoiceBundle(
        invoice=invoice,
        customer=customer,
        project=project,
        project_manager=project.main_project_manager,
        original_status=original,
    )


def with_customer(bundle: InvoiceBundle, **changes: Any) -> InvoiceBundle:
    assert bundle.customer is not None
    return bundle.model_copy(update={"customer": bundle.customer.model_copy(update=changes)})


@pytest.mark.parametrize("kind", list(InvoiceKind))
def test_every_sample_kind_is_valid(kind: InvoiceKind) -> None:
    validate_bundle(sample_bundle(kind))


def test_customer_without_org_number_or_email_is_a_data_error_naming_field_and_fix() -> None:
    bundle = with_customer(sample_bundle(), organisation_number=None, invoice_email=None)
    with pytest.raises(DataError) as err:
        validate_bundle(bundle)
    message = err.value.message
    assert f"Invoice {bundle.invoice.id}" in message
    assert "organisation number" in message and "invoice e-mail" in message
    assert "delete the failed payment" in message


def test_malformed_org_number_and_shared_org_number_are_data_errors() -> None:
    with pytest.raises(DataError, match="not 9 digits"):
        validate_bundle(with_customer(sample_bundle(), organisation_number="12345"))
    shared = sample_bundle().model_copy(update={"customers_sharing_org_number": [77, 78]})
    with pytest.raises(DataError, match="also used by Qondor customer"):
        validate_bundle(shared)


def test_unmapped_article_and_missing_card_payment_type_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="article 3000 has no mapping"):
        check_office_mapping(sample_bundle(), office(article_mapping={"3100": {"vat_type": "31"}}))
    with pytest.raises(ConfigurationError, match="card_payment_type_id"):
        check_office_mapping(sample_bundle(InvoiceKind.CREDIT_CARD_PAYMENT), office(card_payment_type_id=None))


def test_credit_note_rules() -> None:
    bundle = sample_bundle(InvoiceKind.CREDIT_NOTE)
    with pytest.raises(DataError, match="does not exist in Qondor"):
        validate_bundle(bundle.model_copy(update={"original_status": None}))
    with pytest.raises(DataError, match="failed and was never booked"):
        validate_bundle(bundle.model_copy(update={"original_status": int(QueueStatus.FAILED)}))


def test_lines_not_adding_up_to_the_total_is_a_data_error() -> None:
    bundle = sample_bundle()
    broken = bundle.invoice.model_copy(update={"total_incl_vat": bundle.invoice.total_incl_vat + 100})
    with pytest.raises(DataError, match="add up to"):
        validate_bundle(bundle.model_copy(update={"invoice": broken}))


def test_order_lines_carry_the_mapped_vat_type_and_refuse_a_mismatching_rate() -> None:
    bundle = sample_bundle()
    lines = order_lines(bundle.invoice, office(), VAT, {})
    assert [line["vatType"]["id"] for line in lines] == [
        {"3000": 3, "3100": 31, "3200": 33}[line.article_number or ""] for line in bundle.invoice.lines
    ]
    assert all(line["count"] > 0 for line in lines)  # an omitted count makes a 0-NOK invoice in Tripletex
    wrong = office(article_mapping={"3000": {"vat_type": "3"}, "3100": {"vat_type": "3"}, "3200": {"vat_type": "33"}})
    with pytest.raises(ConfigurationError, match=r"15 % VAT but article 3100 maps to VAT code 3 \(25 %\)"):
        order_lines(bundle.invoice, wrong, VAT, {})


def test_product_mapping_needs_the_product_to_exist() -> None:
    mapped = office(article_mapping={"3000": {"product": "P1"}, "3100": {"vat_type": "31"}, "3200": {"vat_type": "33"}})
    bundle = sample_bundle()
    with pytest.raises(ConfigurationError, match="product P1"):
        order_lines(bundle.invoice, mapped, VAT, {})
    lines = order_lines(bundle.invoice, mapped, VAT, {"P1": 900})
    assert {"id": 900} in [line.get("product") for line in lines]


def test_order_body_carries_the_business_key_and_the_parties() -> None:
    bundle = sample_bundle()
    refs = AccountingRefs(customer_id="10", contact_id="11", project_id="12")
    body = order_body(bundle, refs, office(), [])
    assert body["reference"] == f"qondor-2-{bundle.invoice.id}"
    assert body["customer"] == {"id": 10} and body["project"] == {"id": 12} and body["contact"] == {"id": 11}
    assert None not in body.values()


def test_booker_becomes_a_private_customer_keyed_by_email() -> None:
    bundle = sample_bundle(InvoiceKind.BOOKING_INVOICE)
    body = customer_body(bundle)
    assert body["isPrivateIndividual"] is True and "organizationNumber" not in body
    assert customer_link_key(bundle) == f"booker:{body['email']}"


def test_fingerprint_changes_only_with_content() -> None:
    a = customer_body(sample_bundle())
    assert fingerprint(a) == fingerprint(dict(reversed(list(a.items()))))
    assert fingerprint(a) != fingerprint({**a, "name": "Renamed AS"})


def test_money_and_org_numbers() -> None:
    assert money(Decimal("10.005")) == Decimal("10.01")
    assert normalise_org_number("NO 912 345 678 MVA") == "912345678"
    assert is_full_credit(Decimal("-100.00"), Decimal("100")) and not is_full_credit(Decimal("-50"), Decimal("100"))


async def test_pacer_spaces_calls_to_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    pacer = Pacer(20)
    started = time.monotonic()
    await asyncio.gather(*(pacer.wait() for _ in range(6)))
    assert time.monotonic() - started >= 5 / 20 - 0.01  # a lower bound: holds however busy the machine is
    # Unpaced never waits: proven by sleep never being called, not by a wall-clock bound.
    slept: list[float] = []

    async def no_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("clients.pacing.asyncio.sleep", no_sleep)
    await asyncio.gather(*(Pacer(None).wait() for _ in range(100)))
    await asyncio.gather(*(Pacer(0).wait() for _ in range(100)))
    assert slept == []
