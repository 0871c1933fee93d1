"""Realistic seed data for the emulator: one Norwegian office with a queue item of every kind.

Why deterministic ids derived from the office id (office 2 -> customers 2001.., projects 2301.., invoices
2501..): tests and the demo can name records without looking them up, and two offices seeded side by side
never collide. Amounts follow Norwegian VAT arithmetic to the øre: ``amountExclVat = quantity × unitPrice``
and ``vatAmount = amountExclVat × rate``, each rounded half-up to 0.01, ``amountInclVat`` their sum; invoice
totals are the sums of the lines. All documents are the camelCase JSON ``POST /_admin/seed`` accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.qondor import InvoiceKind, QueueStatus
from domain.rules import is_valid_org_number as is_valid_org_number  # re-exported: tests check the seed with it
from domain.rules import org_number_check_digit
from emulators.qondor.wire import format_datetime

ARTICLES: dict[str, tuple[Decimal, str]] = {
    "3000": (Decimal("25"), "Standard rate: meeting rooms, technical equipment, fees, alcohol"),
    "3100": (Decimal("15"), "Food and non-alcoholic drinks"),
    "3200": (Decimal("12"), "Accommodation (hotel rooms)"),
}
"""Qondor VAT articles (article number -> VAT %, what it is used for) used throughout the sample data."""
UNMAPPED_ARTICLE = "9999"
"""An article number no office mapping contains (for the configuration-error path)."""
MISSING_INVOICE_ID = 999_999
"""``creditedInvoiceId`` of the orphan credit note in :func:`bad_items`; no seed ever uses this id."""

_ORE = Decimal("0.01")


def org_number(seed: int) -> str:
    """A valid Norwegian organisation number (MOD11 check digit) starting with 9, deterministic in ``seed``."""
    base = 90_000_000 + (seed * 7919) % 10_000_000
    while (check := org_number_check_digit(f"{base:08d}")) is None:
        base += 1
    return f"{base:08d}{check}"


def _money(value: Decimal) -> Decimal:
    return value.quantize(_ORE, rounding=ROUND_HALF_UP)


def line(line_no: int, article: str, description: str, quantity: str | int | Decimal, unit_price: str | Decimal,
         vat_percentage: Decimal | None = None) -> dict[str, Any]:
    """One invoice line with the VAT arithmetic done to the øre (VAT % from :data:`ARTICLES` by default)."""
    qty = Decimal(str(quantity))
    unit = Decimal(str(unit_price))
    rate = vat_percentage if vat_percentage is not None else ARTICLES[article][0]
    excl = _money(qty * unit)
    vat = _money(excl * rate / 100)
    return {"lineNo": line_no, "articleNumber": article, "description": description, "quantity": qty,
            "unitPriceExclVat": unit, "vatPercentage": rate, "amountExclVat": excl, "vatAmount": vat,
            "amountInclVat": excl + vat}


def invoice(invoice_id: int, office_id: int, kind: InvoiceKind, lines: list[dict[str, Any]], *,
            invoice_date: date, project: Mapping[str, Any] | None, customer_id: int | None = None,
            contact_person_id: int | None = None, **extra: Any) -> dict[str, Any]:
    """An Unprocessed queue item with totals summed from its lines (NOK, 14 days' credit)."""
    doc: dict[str, Any] = {
        "id": invoice_id, "officeId": office_id, "kind": int(kind), "kindText": kind.label,
        "status": int(QueueStatus.UNPROCESSED), "statusText": "Unprocessed",
        "invoiceNumber": f"{office_id}-{invoice_id}", "invoiceDate": invoice_date,
        "dueDate": invoice_date + timedelta(days=14), "currency": "NOK", "currencyCode": 578,
        "projectId": project["id"] if project else None, "projectNo": project.get("projectNo") if project else None,
        "customerId": customer_id, "contactPersonId": contact_person_id, "lines": lines,
        "totalExclVat": sum((ln["amountExclVat"] for ln in lines), Decimal(0)),
        "totalVat": sum((ln["vatAmount"] for ln in lines), Decimal(0)),
        "totalInclVat": sum((ln["amountInclVat"] for ln in lines), Decimal(0)),
        "createdUtc": datetime.fromisoformat(f"{invoice_date.isoformat()}T08:00:00+00:00"),
        **extra,
    }
    return {k: v for k, v in doc.items() if v is not None}


def credit_note_for(original: Mapping[str, Any], credit_id: int, invoice_date: date) -> dict[str, Any]:
    """A credit note reversing ``original`` in full: same lines with negative quantity and amounts."""
    lines = [{**ln, "quantity": -ln["quantity"], "amountExclVat": -ln["amountExclVat"],
              "vatAmount": -ln["vatAmount"], "amountInclVat": -ln["amountInclVat"]} for ln in original["lines"]]
    extra = {k: original[k] for k in ("yourReference", "customInvoiceFields") if k in original}
    project = {"id": original.get("projectId"), "projectNo": original.get("projectNo")}
    return invoice(credit_id, original["officeId"], InvoiceKind.CREDIT_NOTE, lines, invoice_date=invoice_date,
                   project=project, customer_id=original.get("customerId"),
                   contact_person_id=original.get("contactPersonId"), creditedInvoiceId=original["id"], **extra)


def office(office_id: int) -> dict[str, Any]:
    return {"id": office_id, "name": f"Nordlys Events {office_id}", "internalName": f"NLE-{office_id}",
            "externalReference": f"office-{office_id}", "countryCode": "NO"}


def company(customer_id: int, office_id: int, name: str, *, org_seed: int | None, email_domain: str | None,
            contact: Mapping[str, Any] | None = None, city: str = "Oslo", zip_code: str = "0150") -> dict[str, Any]:
    """A Norwegian company customer; ``org_seed=None`` / ``email_domain=None`` leave those fields out."""
    doc: dict[str, Any] = {
        "id": customer_id, "officeId": office_id, "name": name, "legalName": name,
        "externalReference": f"qc-{customer_id}", "customerNumber": str(10_000 + customer_id),
        "address": "Storgata 1", "zipCode": zip_code, "city": city, "countryCode": "NO",
        "phoneNumber": "+47 22 00 00 00", "isActive": True, "isInvoiceable": True,
        "invoiceCurrency": "NOK", "invoiceCurrencyCode": 578,
    }
    if org_seed is not None:
        doc["organisationNumber"] = org_number(org_seed)
        doc["vatNumber"] = f"NO{doc['organisationNumber']}MVA"
    if email_domain is not None:
        doc["invoiceEmail"] = f"faktura@{email_domain}"
    if contact is not None:
        doc["contactPersons"] = [dict(contact)]
    return doc


def person(person_id: int, first: str, last: str, domain: str) -> dict[str, Any]:
    return {"id": person_id, "externalReference": f"qcp-{person_id}", "firstName": first, "lastName": last,
            "email": f"{first.lower()}.{last.lower()}@{domain}", "phoneNumber": "+47 900 00 000", "isActive": True}


def project_manager(pm_id: int, first: str, last: str, office_id: int, *, main: bool) -> dict[str, Any]:
    return {"id": pm_id, "firstName": first, "lastName": last, "fullName": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@nordlys-events-{office_id}.example",
            "isMainProjectManager": main, "isMainProjectLeader": main}


def project(project_id: int, office_id: int, name: str, customer: Mapping[str, Any] | None,
            managers: list[dict[str, Any]], start: date, days: int = 2) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": project_id, "officeId": office_id, "name": name, "projectNo": f"{office_id}{project_id % 100_000:05d}",
        "status": 2, "statusText": "Confirmed", "startDate": start, "endDate": start + timedelta(days=days),
        "currency": "NOK", "currencyCode": 578, "projectManagers": managers,
        "settingsLastEditedDate": f"{(start - timedelta(days=30)).isoformat()}T12:00:00Z",
    }
    if customer is not None:
        doc.update(customerId=customer["id"], customerName=customer["name"],
                   customerNumber=customer.get("customerNumber"))
    return doc


def sample_office_data(office_id: int = 2) -> dict[str, Any]:
    """One office, 3 customers, 3 projects and 6 Unprocessed queue items, one of every kind (ids: module doc).

    ============  ========================  ======================================================
    invoice id    kind                       party / notes
    ============  ========================  ======================================================
    base+501      customer offer invoice     customer base+1, project base+301 (meeting package)
    base+502      customer offer invoice     same customer and project again (dinner add-on)
    base+503      customer form invoice      customer base+2, project base+302
    base+504      booking invoice            private booker (no customer, no org number), project base+303
    base+505      credit card payment        customer base+3, project base+303, Stripe, paid in full
    base+506      credit note                credits base+502 in full (negative), customer base+1
    ============  ========================  ======================================================

    ``base`` is ``office_id * 1000``; contact persons are base+101..103, project managers base+201..202.
    """
    base = office_id * 1000
    kari = person(base + 101, "Kari", "Nordmann", "havblikk-teknologi.example")
    ola = person(base + 102, "Ola", "Hansen", "solberg-dahl.example")
    siri = person(base + 103, "Siri", "Lunde", "arrangorforum.example")
    havblikk = company(base + 1, office_id, "Havblikk Teknologi AS", org_seed=base + 1,
                       email_domain="havblikk-teknologi.example", contact=kari)
    solberg = company(base + 2, office_id, "Solberg & Dahl Advokatfirma AS", org_seed=base + 2,
                      email_domain="solberg-dahl.example", contact=ola, city="Bergen", zip_code="5003")
    forum = company(base + 3, office_id, "Norsk Arrangørforum AS", org_seed=base + 3,
                    email_domain="arrangorforum.example", contact=siri, city="Trondheim", zip_code="7011")
    ingrid = project_manager(base + 201, "Ingrid", "Berg", office_id, main=True)
    lars = project_manager(base + 202, "Lars", "Eide", office_id, main=False)
    kickoff = project(base + 301, office_id, "Havblikk kick-off 2026", havblikk,
                      [ingrid, lars], date(2026, 3, 12))
    partner = project(base + 302, office_id, "Solberg & Dahl partnersamling", solberg,
                      [{**lars, "isMainProjectManager": True, "isMainProjectLeader": True}], date(2026, 4, 16))
    conference = project(base + 303, office_id, "Arrangørkonferansen 2026", forum,
                         [ingrid], date(2026, 5, 6), days=1)

    offer_1 = invoice(base + 501, office_id, InvoiceKind.CUSTOMER_OFFER_INVOICE, [
        line(1, "3000", "Møterom, heldagsleie", 2, "12500.00"),
        line(2, "3100", "Lunsjbuffet", 45, "389.00"),
        line(3, "3200", "Overnatting enkeltrom", 40, "1495.50"),
        line(4, "3000", "Teknisk utstyr, AV-pakke", 1, "7990.00"),
    ], invoice_date=date(2026, 3, 16), project=kickoff, customer_id=havblikk["id"], contact_person_id=kari["id"],
        yourReference="Kari Nordmann",
        customInvoiceFields=[{"heading": "PO number", "value": "PO-55821", "externalReference": "po"}])
    offer_2 = invoice(base + 502, office_id, InvoiceKind.CUSTOMER_OFFER_INVOICE, [
        line(1, "3100", "Festmiddag, tre retter", 45, "695.00"),
        line(2, "3000", "Vinpakke til middag", 45, "245.00"),
    ], invoice_date=date(2026, 3, 17), project=kickoff, customer_id=havblikk["id"], contact_person_id=kari["id"],
        yourReference="Kari Nordmann")
    form = invoice(base + 503, office_id, InvoiceKind.CUSTOMER_FORM_INVOICE, [
        line(1, "3000", "Deltakeravgift partnersamling", 18, "2450.00"),
        line(2, "3200", "Overnatting dobbeltrom til enkeltbruk", 18, "1290.00"),
        line(3, "3100", "Middag", 18, "545.00"),
    ], invoice_date=date(2026, 4, 20), project=partner, customer_id=solberg["id"], contact_person_id=ola["id"],
        yourReference="Ola Hansen")
    booking = invoice(base + 504, office_id, InvoiceKind.BOOKING_INVOICE, [
        line(1, "3000", "Konferanseavgift Arrangørkonferansen", 1, "3900.00"),
        line(2, "3200", "Overnatting, 2 netter", 2, "1345.00"),
    ], invoice_date=date(2026, 5, 7), project=conference,
        booker={"firstName": "Mona", "lastName": "Johansen", "email": "mona.johansen@privat.example",
                "phoneNumber": "+47 911 11 111", "address": "Bakkeveien 7", "zipCode": "7020", "city": "Trondheim",
                "countryCode": "NO"})
    card_lines = [
        line(1, "3000", "Standleie, utstillerområde", 1, "8500.00"),
        line(2, "3100", "Lunsj for standpersonell", 3, "389.00"),
    ]
    card_total = sum((ln["amountInclVat"] for ln in card_lines), Decimal(0))
    card = invoice(base + 505, office_id, InvoiceKind.CREDIT_CARD_PAYMENT, card_lines, invoice_date=date(2026, 4, 2),
                   project=conference, customer_id=forum["id"], contact_person_id=siri["id"],
                   cardPayment={"psp": "Stripe", "transactionId": f"pi_3Qsample{base + 505}",
                                "paidAmount": card_total, "paidDateUtc": "2026-04-02T09:41:27Z"})
    credit = credit_note_for(offer_2, base + 506, date(2026, 3, 20))
    return {
        "offices": [office(office_id)],
        "customers": [havblikk, solberg, forum],
        "projects": [kickoff, partner, conference],
        "invoices": [offer_1, offer_2, form, booking, card, credit],
    }


_BULK_LINES = (
    ("3000", "Møterom, dagleie", 1, "8900.00"),
    ("3100", "Lunsj", 25, "329.00"),
    ("3200", "Overnatting", 20, "1395.00"),
)


def bulk_invoices(office_id: int, n: int, start_id: int, repeat_customers: bool, *,
                  kinds: Sequence[InvoiceKind] = (InvoiceKind.CUSTOMER_OFFER_INVOICE,)) -> dict[str, Any]:
    """``n`` valid Unprocessed invoices (ids ``start_id``..) plus the customers and projects they need.

    ``repeat_customers=True`` cycles through 5 customers/projects (the accounting system sees returning
    customers); ``False`` gives every invoice its own customer and project (worst case: all new). Customer,
    contact person, project and project-manager ids also start at ``start_id``. ``kinds`` is cycled;
    credit notes are not supported here (they need an original).
    """
    if InvoiceKind.CREDIT_NOTE in kinds:
        raise ValueError("bulk_invoices does not build credit notes")
    pool = min(n, 5) if repeat_customers else n
    manager = project_manager(start_id, "Bente", "Bulk", office_id, main=True)
    customers, projects = [], []
    for i in range(pool):
        cid = start_id + i
        domain = f"bulk-{office_id}-{cid}.example"
        customer = company(cid, office_id, f"Bulkkunde {cid} AS", org_seed=cid, email_domain=domain,
                           contact=person(cid, "Kontakt", f"Person{cid}", domain))
        customers.append(customer)
        projects.append(project(cid, office_id, f"Bulkprosjekt {cid}", customer, [manager],
                                date(2026, 6, 1) + timedelta(days=i % 200)))
    invoices = []
    for i in range(n):
        customer, proj = customers[i % pool], projects[i % pool]
        kind = kinds[i % len(kinds)]
        lines = [line(j + 1, *spec) for j, spec in enumerate(_BULK_LINES)]
        extra: dict[str, Any] = {}
        if kind is InvoiceKind.BOOKING_INVOICE:
            extra["booker"] = {"firstName": "Privat", "lastName": f"Booker{start_id + i}",
                               "email": f"booker{start_id + i}@privat.example", "countryCode": "NO"}
        if kind is InvoiceKind.CREDIT_CARD_PAYMENT:
            total = sum((ln["amountInclVat"] for ln in lines), Decimal(0))
            extra["cardPayment"] = {"psp": "Worldline", "transactionId": f"wl-{start_id + i}", "paidAmount": total,
                                    "paidDateUtc": "2026-06-01T10:00:00Z"}
        is_booking = kind is InvoiceKind.BOOKING_INVOICE
        invoices.append(invoice(start_id + i, office_id, kind, lines, invoice_date=date(2026, 6, 1), project=proj,
                                customer_id=None if is_booking else customer["id"],
                                contact_person_id=None if is_booking else customer["contactPersons"][0]["id"],
                                **extra))
    return {"offices": [office(office_id)], "customers": customers, "projects": projects, "invoices": invoices}


def bad_items(office_id: int = 2, start_id: int = 9000) -> dict[str, dict[str, Any]]:
    """Deliberately broken queue items, one seed fragment per case (merge with :func:`merge_seeds`).

    Each fragment holds its own customers/projects and exactly one invoice, ids from ``start_id`` upwards:

    * ``no_org_number_no_email`` — company customer with neither organisation number nor invoice e-mail
      (invoice ``start_id+1``, customer ``start_id+1``);
    * ``shared_org_number`` — two customers of the office with the same organisation number; the invoice
      (``start_id+2``) is to the first (customers ``start_id+2`` and ``start_id+3``);
    * ``unmapped_article`` — a line with article :data:`UNMAPPED_ARTICLE` (invoice ``start_id+4``);
    * ``orphan_credit_note`` — a credit note whose ``creditedInvoiceId`` (:data:`MISSING_INVOICE_ID`) does not
      exist (invoice ``start_id+5``).
    """
    manager = project_manager(start_id, "Frida", "Feil", office_id, main=True)
    when = date(2026, 3, 2)

    def fragment(customers: list[dict[str, Any]], invoice_id: int, kind: InvoiceKind,
                 lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        owner = customers[0]
        proj = project(invoice_id, office_id, f"Feilprosjekt {invoice_id}", owner, [manager], when)
        item = invoice(invoice_id, office_id, kind, lines, invoice_date=when, project=proj,
                       customer_id=owner["id"], **extra)
        return {"customers": customers, "projects": [proj], "invoices": [item]}

    standard = [line(1, "3000", "Møterom", 1, "5000.00")]
    no_ids = company(start_id + 1, office_id, "Uten Nummer AS", org_seed=None, email_domain=None)
    twin_a = company(start_id + 2, office_id, "Tvilling Holding AS", org_seed=start_id + 2,
                     email_domain="tvilling.example")
    twin_b = {**company(start_id + 3, office_id, "Tvilling Holding AS (duplikat)", org_seed=None,
                        email_domain="tvilling-duplikat.example"),
              "organisationNumber": twin_a["organisationNumber"]}
    plain = company(start_id + 4, office_id, "Ukjent Artikkel AS", org_seed=start_id + 4,
                    email_domain="ukjent-artikkel.example")
    orphan_owner = company(start_id + 5, office_id, "Kreditnota Uten Original AS", org_seed=start_id + 5,
                           email_domain="uten-original.example")
    negative = [{**ln, "quantity": -ln["quantity"], "amountExclVat": -ln["amountExclVat"],
                 "vatAmount": -ln["vatAmount"], "amountInclVat": -ln["amountInclVat"]} for ln in standard]
    return {
        "no_org_number_no_email": fragment([no_ids], start_id + 1, InvoiceKind.CUSTOMER_OFFER_INVOICE, standard),
        "shared_org_number": fragment([twin_a, twin_b], start_id + 2, InvoiceKind.CUSTOMER_OFFER_INVOICE, standard),
        "unmapped_article": fragment([plain], start_id + 4, InvoiceKind.CUSTOMER_OFFER_INVOICE,
                                     [*standard, line(2, UNMAPPED_ARTICLE, "Ukjent vare", 1, "100.00",
                                                      vat_percentage=Decimal("25"))]),
        "orphan_credit_note": fragment([orphan_owner], start_id + 5, InvoiceKind.CREDIT_NOTE, negative,
                                       creditedInvoiceId=MISSING_INVOICE_ID),
    }


def without_customer_references(seed: Mapping[str, Any]) -> dict[str, Any]:
    """The seed with no customer External Reference: an office new to 24SevenOffice, where that field holds the
    24SevenOffice company id the sync writes back (the sample's ``qc-...`` references are another system's)."""
    customers = [{k: v for k, v in c.items() if k != "externalReference"} for c in seed.get("customers", [])]
    return {**seed, "customers": customers}


def merge_seeds(*docs: Mapping[str, Any]) -> dict[str, Any]:
    """Concatenate seed documents list by list (later records with the same id win when seeded)."""
    merged: dict[str, list[Any]] = {}
    for doc in docs:
        for key, items in doc.items():
            merged.setdefault(key, []).extend(items)
    return merged


def jsonable(value: Any) -> Any:
    """The same document with only JSON-native values, for ``httpx.post(url, json=...)``.

    Decimals become floats (exact here: every amount has at most 15 significant digits, and the emulator
    parses JSON numbers back to ``Decimal`` via their shortest repr); dates become ISO strings.
    """
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
