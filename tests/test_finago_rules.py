"""End-to-end: the 24SevenOffice rules the seed and its error table name, each item in one batch of one office.

* a customer linked by hand (External Reference set to an existing company id) books against that company,
  which takes Qondor's data;
* a reference that points at no company fails that item only (Qondor + Slack), naming the customer;
* an existing company with the customer's organisation number is linked and its id written back; two such
  companies are an error, never a guess;
* "SO" + digits gives the 24SevenOffice project id;
* an article without a mapping gets the misc product; a line whose VAT differs from its product's needs
  attention until the operator fixes the product, then a resync books it;
* one booker's two bookings reuse one consumer company.

Assertions are on the emulated 24SevenOffice, Qondor and Slack after the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from test_errors import SLACK_ENV, alerts_for, slack, slack_server, wait_for_alerts  # noqa: F401  (fixtures)
from test_slack import FakeSlack

from accounting.finago.emulator import seed as finago_seed
from domain.qondor import InvoiceKind, QueueStatus
from domain.sync import SyncState
from emulators.qondor.sample import company, line, office, org_number, project, project_manager
from emulators.qondor.sample import invoice as queue_item
from harness import Stack, new_stack, wait_until

WHEN = date(2026, 9, 1)
MISMATCH_ARTICLE = "3300"
"""A 15 % article the office maps to the misc category (25 %): the VAT-mismatch case."""


def scenario_seed(office_id: int, manual_company_id: int) -> dict[str, Any]:
    base = office_id * 1000
    pm = project_manager(base + 900, "Pia", "Prosjekt", office_id, main=True)
    customers: list[dict[str, Any]] = []
    projects: list[dict[str, Any]] = []
    invoices: list[dict[str, Any]] = []

    def item(n: int, name: str, *, ref: str | None = None, org_seed: int | None = None, project_no: str | None = None,
             lines: list[dict[str, Any]] | None = None, kind: InvoiceKind = InvoiceKind.CUSTOMER_OFFER_INVOICE,
             **extra: Any) -> None:
        customer = company(base + n, office_id, name, org_seed=org_seed if org_seed is not None else base + n,
                           email_domain=f"c{base + n}.example")
        customer.pop("externalReference", None)
        if ref is not None:
            customer["externalReference"] = ref
        proj = project(base + n, office_id, f"Prosjekt {n}", customer, [pm], WHEN)
        if project_no is not None:
            proj["projectNo"] = project_no
        customers.append(customer)
        projects.append(proj)
        invoices.append(queue_item(base + n, office_id, kind, lines or [line(1, "3000", "Møterom", 1, "1000.00")],
                                   invoice_date=WHEN, project=proj,
                                   customer_id=None if kind is InvoiceKind.BOOKING_INVOICE else customer["id"],
                                   **extra))

    item(1, "Manuelt Koblet AS", ref=str(manual_company_id))
    item(2, "Feil Referanse AS", ref="999999")
    item(3, "Finnes Fra Før AS", org_seed=7001)
    item(4, "Tvilling AS", org_seed=7002)
    item(5, "SO-Prosjekt AS", project_no="SO4711")
    item(6, "Ukjent Artikkel AS", lines=[line(1, "9999", "Ukjent vare", 2, "250.00", vat_percentage=Decimal(25))])
    item(7, "Feil Mva AS", lines=[line(1, MISMATCH_ARTICLE, "Servering", 1, "500.00", vat_percentage=Decimal(15))])
    booker = {"firstName": "Bo", "lastName": "Booker", "email": "Bo.Booker@privat.example", "countryCode": "NO"}
    item(8, "Booking 1", kind=InvoiceKind.BOOKING_INVOICE, booker=booker)
    item(9, "Booking 2", kind=InvoiceKind.BOOKING_INVOICE, booker={**booker, "email": "bo.booker@privat.example"})
    return {"offices": [office(office_id)], "customers": customers, "projects": projects, "invoices": invoices}


@pytest.fixture
async def stack(temporal_env: WorkflowEnvironment, tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Stack]:  # noqa: F811
    from accounting.registry import SYSTEMS

    section = SYSTEMS["finago"].emulator_office("http://finago.test")["accounting"]
    mapping = {**section["article_mapping"], MISMATCH_ARTICLE: {"category_id": finago_seed.MISC_CATEGORY_ID}}
    stack = new_stack(temporal_env.client, tmp_path, seed={}, system="finago",
                      accounting={**section, "article_mapping": mapping},
                      slack={"webhook_url": {"env": SLACK_ENV}})
    yield stack
    await stack.close()


async def test_the_24sevenoffice_rules_each_with_its_outcome(stack: Stack, slack: FakeSlack) -> None:  # noqa: F811
    books = stack.accounting
    office, base = stack.office_id, stack.office_id * 1000
    manual = finago_seed.apply_seed(books, {"companies": [
        {"Name": "Gammelt Navn AS", "Type": "Business", "OrganizationNumber": org_number(base + 1)},
        {"Name": "Finnes Fra Før AS", "Type": "Business", "OrganizationNumber": org_number(7001)},
        {"Name": "Tvilling AS", "Type": "Business", "OrganizationNumber": org_number(7002)},
        {"Name": "Tvilling AS (kopi)", "Type": "Business", "OrganizationNumber": org_number(7002)},
    ]})["companies"]
    stack.qondor.seed(scenario_seed(office, manual[0]))
    stack.start_worker()
    await stack.discover()
    q = {n: base + n for n in range(1, 10)}

    for n in (1, 3, 5, 6, 8, 9):
        await stack.wait_for_state(q[n], SyncState.AWAITING_PAYMENT)
    for n in (2, 4):
        await stack.wait_for_state(q[n], SyncState.FAILED)
    await stack.wait_for_state(q[7], SyncState.NEEDS_ATTENTION)
    orders = {str(o["ReferenceNumber"]): o for o in books.all("orders")}
    assert set(orders) == {str(q[n]) for n in (1, 3, 5, 6, 8, 9)}

    # Linked by hand: the company takes Qondor's data, and no new company is made for the customer.
    assert orders[str(q[1])]["CustomerId"] == manual[0]
    assert books.get("companies", manual[0])["Name"] == "Manuelt Koblet AS"
    assert books.get("companies", manual[0])["ExternalId"] == str(q[1])
    # A reference to no company: failed in Qondor with the customer named; Slack told; nothing booked for it.
    failed = stack.qondor.invoice_model(q[2])
    assert stack.qondor.status_of(q[2]) == QueueStatus.FAILED
    assert failed.failure_message and "999999" in failed.failure_message
    assert "Feil Referanse AS" in failed.failure_message
    assert await wait_for_alerts(slack, q[2])
    # An existing company with the organisation number is linked, and its id written back to Qondor.
    assert orders[str(q[3])]["CustomerId"] == manual[1]
    assert stack.qondor.customer_external_reference(q[3]) == str(manual[1])
    # Two companies with one organisation number: an error naming both, never a guess.
    twin = stack.qondor.invoice_model(q[4]).failure_message or ""
    assert str(manual[2]) in twin and str(manual[3]) in twin and "2 companies" in twin
    assert stack.qondor.customer_external_reference(q[4]) is None
    # "SO4711" -> project 4711.
    assert orders[str(q[5])]["ProjectId"] == 4711 and books.get("projects", 4711) is not None
    # An unmapped article: the misc product.
    assert [r["ProductId"] for r in orders[str(q[6])]["InvoiceRows"]["InvoiceRow"]] == [finago_seed.MISC_PRODUCT_ID]
    # One booker, two bookings (e-mail in another case): one consumer company.
    assert orders[str(q[8])]["CustomerId"] == orders[str(q[9])]["CustomerId"]
    consumers = [c for c in books.all("companies") if c.get("Type") == "Consumer"]
    assert len(consumers) == 1

    # VAT mismatch: needs attention, naming both rates and the product; finance fixes the product; a resync books.
    status = await stack.status(q[7])
    assert status.last_error and "15 %" in status.last_error and "25 %" in status.last_error
    assert f"product {finago_seed.MISC_PRODUCT_ID}" in status.last_error
    assert stack.qondor.status_of(q[7]) == QueueStatus.UNPROCESSED
    books.get("products", finago_seed.MISC_PRODUCT_ID)["TaxRate"] = Decimal(15)
    await stack.handle(q[7]).signal("resync")
    await stack.wait_for_state(q[7], SyncState.AWAITING_PAYMENT)
    booked = [o for o in books.all("orders") if str(o["ReferenceNumber"]) == str(q[7])]
    assert len(booked) == 1 and stack.qondor.status_of(q[7]) == QueueStatus.PROCESSED

    async def processed() -> bool:
        return all(stack.qondor.status_of(q[n]) == QueueStatus.PROCESSED for n in (1, 3, 5, 6, 8, 9))

    await wait_until(processed, 10, "every booked item processed in Qondor")
    assert len(alerts_for(slack, q[1])) == 0
