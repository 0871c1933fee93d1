"""Reference data every emulated company starts with, and ``POST /_admin/seed``.

Defaults (``apply_defaults``), chosen to look like a Norwegian sandbox company:

* company id ``COMPANY_ID`` with a registered bank account (invoicing works);
* the API user: employee ``API_EMPLOYEE_ID`` (ALL_PRIVILEGES), reachable with the token pair
  ``DEFAULT_CONSUMER_TOKEN`` / ``DEFAULT_EMPLOYEE_TOKEN``;
* VAT types with ``id == number``: 3 (25 %), 31 (15 %), 33 (12 %), 5 (0 %, inside the VAT law), 6 (0 %,
  outside), 7 (0 %, no VAT treatment, income), 0 (no VAT), 1/11/13 (incoming 25/15/12 %);
* currencies NOK=1, SEK=2, DKK=3, USD=4, EUR=5, GBP=6;
* payment types ``PAYMENT_TYPE_CASH`` "Kontant", ``PAYMENT_TYPE_BANK`` "Betalt til bank",
  ``PAYMENT_TYPE_CARD`` "Kortbetaling";
* one department (id 1);
* a chart of accounts with their types and the voucher types (``ledger.py``).

Seed document (every key optional; lists are created in this order, through the same rules as the API)::

    {
      "today": "2025-03-01",                         # pin the emulator's date (session expiry, defaults)
      "company": {"name": "...", "organizationNumber": "..."},
      "bankAccount": true,                           # false: invoicing fails with 422 like a new company
      "tokens": [{"consumerToken": "c", "employeeToken": "e", "employeeId": 101}],   # employeeId optional
      "vatTypes": [{"id": 3, "number": "3", "name": "...", "percentage": 25, "typeOfVat": "OUTGOING"}],
      "currencies": [{"id": 5, "code": "EUR"}],
      "paymentTypes": [{"id": 1003, "description": "Kortbetaling"}],
      "products": [{"number": "A1", "name": "...", "vatType": {"id": 3}, "priceExcludingVatCurrency": 100}],
      "employees": [{"firstName": "...", "lastName": "...", "userType": "STANDARD", "email": "...",
                     "entitlements": ["ALL_PRIVILEGES"]}],
      "customers": [{...Customer...}], "contacts": [{...Contact...}], "projects": [{...Project...}],
      "accounts": [{"number": 6810, "name": "...", "type": "OPERATING_EXPENSES"}],
      "suppliers": [{"name": "...", "organizationNumber": "..."}],
      "supplierInvoices": [{"supplier": {"id": n}, "invoiceNumber": "F-1", "invoiceDate": "2025-03-01",
                            "invoiceDueDate": "2025-03-31", "posted": true, "paid": false, "currency": {"id": 1},
                            "description": "...", "lines": [{"account": 6800, "amount": 1000, "vat": 250,
                            "vatType": {"id": 1}, "project": {"id": n}, "description": "..."}]}]
    }

Any entity may carry an ``id`` to pin it. The answer lists the ids created per key.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from accounting.tripletex.emulator import ledger, writes
from accounting.tripletex.emulator.errors import ApiError
from accounting.tripletex.emulator.state import TripletexState

COMPANY_ID = 4242
API_EMPLOYEE_ID = 101
DEFAULT_CONSUMER_TOKEN = "test-consumer-token"
DEFAULT_EMPLOYEE_TOKEN = "test-employee-token"
PAYMENT_TYPE_CASH = 1001
PAYMENT_TYPE_BANK = 1002
PAYMENT_TYPE_CARD = 1003

VAT_TYPES: list[tuple[int, str, str, str]] = [
    (3, "Utgående avgift, høy sats", "25", "OUTGOING"),
    (31, "Utgående avgift, middels sats", "15", "OUTGOING"),
    (33, "Utgående avgift, lav sats", "12", "OUTGOING"),
    (5, "Ingen utgående avgift (innenfor mva-loven)", "0", "OUTGOING"),
    (6, "Ingen utgående avgift (utenfor mva-loven)", "0", "OUTGOING"),
    (7, "Ingen avgiftsbehandling (inntekter)", "0", "OUTGOING"),
    (0, "Ingen avgiftsbehandling", "0", "INCOMING"),
    (1, "Fradrag inngående avgift, høy sats", "25", "INCOMING"),
    (11, "Fradrag inngående avgift, middels sats", "15", "INCOMING"),
    (13, "Fradrag inngående avgift, lav sats", "12", "INCOMING"),
]
CURRENCIES: list[tuple[int, str, str, int]] = [
    (1, "NOK", "Norske kroner", 1), (2, "SEK", "Svenske kroner", 100), (3, "DKK", "Danske kroner", 100),
    (4, "USD", "Amerikanske dollar", 1), (5, "EUR", "Euro", 1), (6, "GBP", "Britiske pund", 1),
]
PAYMENT_TYPES: list[tuple[int, str]] = [
    (PAYMENT_TYPE_CASH, "Kontant"), (PAYMENT_TYPE_BANK, "Betalt til bank"), (PAYMENT_TYPE_CARD, "Kortbetaling"),
]


def apply_defaults(state: TripletexState) -> None:
    """Install the reference data listed in the module docstring."""
    state.company = {"id": COMPANY_ID, "name": "Emulert Eventbyrå AS", "organizationNumber": "999888777",
                     "currency": {"id": 1}}
    state.insert("department", {"id": 1, "name": "Hovedavdeling", "departmentNumber": "1", "isInactive": False})
    for vat_id, name, percentage, kind in VAT_TYPES:
        _vat_type(state, {"id": vat_id, "number": str(vat_id), "name": name, "percentage": percentage,
                          "typeOfVat": kind})
    for currency_id, code, description, factor in CURRENCIES:
        state.insert("currency", {"id": currency_id, "code": code, "description": description, "factor": factor,
                                  "displayName": f"{code} {description}", "isDisabled": False})
    for type_id, description in PAYMENT_TYPES:
        _payment_type(state, {"id": type_id, "description": description})
    writes.create_employee(state, {"firstName": "API", "lastName": "Integrasjon", "userType": "STANDARD",
                                   "email": "api@emulert.example"}, pin_id=API_EMPLOYEE_ID)
    writes.grant_entitlements(state, API_EMPLOYEE_ID, "ALL_PRIVILEGES")
    state.add_token_pair(DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, API_EMPLOYEE_ID)
    ledger.apply_ledger_defaults(state)


def _vat_type(state: TripletexState, doc: dict[str, Any]) -> dict[str, Any]:
    kind = doc.pop("typeOfVat", "OUTGOING")
    data = writes.check_body("VatType", {**doc, "percentage": float(Decimal(str(doc.get("percentage", 0))))})
    data.setdefault("displayName", f"{data.get('number')} {data.get('name', '')}".strip())
    data.setdefault("deductionPercentage", Decimal(100) if kind == "INCOMING" else Decimal(0))
    return state.insert("vatType", {**data, "_typeOfVat": kind})


def _payment_type(state: TripletexState, doc: dict[str, Any]) -> dict[str, Any]:
    data = writes.check_body("PaymentType", doc)
    data.setdefault("displayName", data.get("description"))
    data.setdefault("sequence", len(state.tables["paymentType"]) + 1)
    return state.insert("paymentType", data)


def apply_seed(state: TripletexState, doc: dict[str, Any]) -> dict[str, list[int]]:
    """Apply a seed document (see module docstring); returns the created ids per key."""
    if not isinstance(doc, dict):
        raise ApiError(400, 4000, "The seed must be a JSON object.")
    created: dict[str, list[int]] = {}
    with state.lock:
        if doc.get("today"):
            state.set_today(date.fromisoformat(doc["today"]))
        if doc.get("company"):
            state.company.update(doc["company"])
        if "bankAccount" in doc:
            state.company_has_bank_account = bool(doc["bankAccount"])
        for token in doc.get("tokens", []):
            state.add_token_pair(token["consumerToken"], token["employeeToken"],
                                 int(token.get("employeeId", API_EMPLOYEE_ID)))
        simple = {"vatTypes": _vat_type, "paymentTypes": _payment_type,
                  "currencies": lambda s, d: s.insert("currency", writes.check_body("Currency", d))}
        for key, make in simple.items():
            created[key] = [make(state, dict(item))["id"] for item in doc.get(key, [])]
        ruled = {"products": writes.create_product, "employees": writes.create_employee,
                 "customers": writes.create_customer, "contacts": writes.create_contact,
                 "projects": writes.create_project}
        for key, make in ruled.items():
            ids = []
            for item in doc.get(key, []):
                item = dict(item)
                pin = item.pop("id", None)
                templates = item.pop("entitlements", []) if key == "employees" else []
                entity = make(state, item, pin)
                for template in templates:
                    writes.grant_entitlements(state, entity["id"], template)
                ids.append(entity["id"])
            created[key] = ids
        created["accounts"] = [ledger.add_account(state, int(a["number"]), a["name"], a["type"])["id"]
                               for a in doc.get("accounts", [])]
        created["suppliers"] = [ledger.add_supplier(state, s["name"], s.get("organizationNumber"))["id"]
                                for s in doc.get("suppliers", [])]
        created["supplierInvoices"] = [_supplier_invoice(state, dict(i))["id"] for i in doc.get("supplierInvoices", [])]
    return created


def _supplier_invoice(state: TripletexState, doc: dict[str, Any]) -> dict[str, Any]:
    """A seeded supplier invoice (the real API cannot create one): its voucher and postings follow ``ledger.py``."""
    lines = [
        ledger.CostLine(
            account=int(line["account"]), amount_excl_vat=Decimal(str(line["amount"])),
            vat=Decimal(str(line.get("vat", 0))), project_id=(line.get("project") or {}).get("id"),
            vat_type_id=int((line.get("vatType") or {"id": 0})["id"]), description=line.get("description"),
        )
        for line in doc.get("lines", [])
    ]
    invoice = ledger.add_supplier_invoice(
        state, supplier_id=int(doc["supplier"]["id"]), invoice_number=str(doc["invoiceNumber"]),
        invoice_date=date.fromisoformat(doc["invoiceDate"]), due_date=date.fromisoformat(doc["invoiceDueDate"]),
        lines=lines, posted=bool(doc.get("posted", True)), currency_id=int((doc.get("currency") or {"id": 1})["id"]),
        description=doc.get("description"),
    )
    if doc.get("paid"):
        ledger.set_paid(state, invoice, True)
    return invoice
