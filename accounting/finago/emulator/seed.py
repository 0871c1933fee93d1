"""The data every emulated 24SevenOffice client starts with, and the seed document of ``POST /_admin/seed``.

Defaults (``apply_defaults``), so a demo works out of the box:

* one API user: ``DEFAULT_APPLICATION_ID`` / ``DEFAULT_USERNAME`` / ``DEFAULT_PASSWORD`` on identity
  ``DEFAULT_IDENTITY_ID`` (client "Qondor Demo AS");
* department ``DEPARTMENT_ID`` "Qondor";
* product categories 1 "Diverse" (``MISC_CATEGORY_ID``), 2 "Overnatting", 3 "Servering", 4 "Transport",
  5 "Avgiftsfritt", each with one product of the same id: ``MISC_PRODUCT_ID`` "Diverse" (25 %),
  2 "Overnatting" (12 %), 3 "Mat og drikke" (15 %), 4 "Transport" (12 %), 5 "Avgiftsfritt" (0 %);
* project statuses ``STATUS_ACTIVE_ID`` "Aktiv" and ``STATUS_CLOSED_ID`` "Avsluttet", project type
  ``PROJECT_TYPE_ID`` "Arrangement";
* payment method ``CARD_PAYMENT_METHOD_ID`` "Kortbetaling" (and 2 "Bank");
* accounts 1500 customer ledger, 1920 bank, 2400 supplier ledger, 2700 output / 2710 input VAT, 3000/3100 revenue,
  4000/6300/6800/7140 expenses; VAT codes 3 (25 %), 31 (15 %), 33 (12 %), 5 (0 %).

Seed document (every key optional; entities use the WSDL's field names and go through the same rules as
the SOAP saves; ``Id`` pins an id; dates are ISO strings, amounts numbers)::

    {
      "identities": [{"id": "<guid>", "clientName": "Other AS"}],
      "credentials": [{"applicationId": "<guid>", "username": "u@x.no", "password": "pw",
                       "identityIds": ["<guid>", ...]}],          # first identity = default at login
      "departments": [{"Id": 2, "Name": "Oslo"}],
      "categories": [{"Id": 9, "Name": "Leie"}],
      "products": [{"Name": "Leie", "CategoryId": 9, "TaxRate": 25, "Price": 100}],
      "vatTypes": [{"Id": 3, "No": 3, "Name": "...", "Rate": 25}],
      "accounts": [{"AccountNo": 6500, "AccountName": "Verktøy"}],
      "projectStatuses": [{"Id": 3, "Name": "Tilbud", "Active": true}],
      "projectTypes": [{"Id": 2, "Name": "Konferanse"}],
      "paymentMethods": [{"Id": 3, "Name": "Vipps"}],
      "companies": [{"Name": "Kunde AS", "OrganizationNumber": "999888777", "Type": "Business"}],
      "projects": [{"Id": 12345, "Name": "Sommerfest", "CustomerId": 1, "StatusId": 1}]
    }

The answer lists the ids created per key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from accounting.finago.emulator.services.company import save_company
from accounting.finago.emulator.services.product import save_category, save_product
from accounting.finago.emulator.services.project import save_project
from accounting.finago.emulator.state import FinagoState

DEFAULT_APPLICATION_ID = "8c8b4f2e-6d0a-4f3b-9a51-24500ffce001"
DEFAULT_USERNAME = "api@qondor-demo.no"
DEFAULT_PASSWORD = "emulator-password"
DEFAULT_IDENTITY_ID = "1f0e6a52-3c7d-4b9e-8f21-24500ffce0a1"
DEPARTMENT_ID = 1
MISC_CATEGORY_ID = 1
MISC_PRODUCT_ID = 1
STATUS_ACTIVE_ID = 1
STATUS_CLOSED_ID = 2
PROJECT_TYPE_ID = 1
CARD_PAYMENT_METHOD_ID = 1

_PRODUCTS: tuple[tuple[int, str, str, int], ...] = (
    (1, "Diverse", "Diverse", 25),
    (2, "Overnatting", "Overnatting", 12),
    (3, "Servering", "Mat og drikke", 15),
    (4, "Transport", "Transport", 12),
    (5, "Avgiftsfritt", "Avgiftsfritt", 0),
)
_ACCOUNTS: tuple[tuple[int, str, int], ...] = (
    (1500, "Kundefordringer", 0), (1920, "Bankinnskudd", 0), (2400, "Leverandørgjeld", 0),
    (2700, "Utgående merverdiavgift", 0), (2710, "Inngående merverdiavgift", 0),
    (3000, "Salgsinntekt, avgiftspliktig", 3), (3100, "Salgsinntekt, avgiftsfri", 5), (4000, "Varekostnad", 1),
    (6300, "Leie lokale", 1),
    (6800, "Kontorrekvisita", 1), (7140, "Reisekostnad, ikke oppgavepliktig", 1),
)
_VAT_TYPES: tuple[tuple[int, str, int, int | None], ...] = (
    (3, "Utgående mva, høy sats", 25, 2700), (31, "Utgående mva, middels sats", 15, 2700),
    (33, "Utgående mva, lav sats", 12, 2700), (5, "Ingen utgående mva", 0, None),
)


def apply_defaults(state: FinagoState) -> None:
    """The default client (see the module docstring)."""
    with state.lock:
        state.add_identity(DEFAULT_IDENTITY_ID, "Qondor Demo AS", 1001)
        state.add_credential(DEFAULT_APPLICATION_ID, DEFAULT_USERNAME, DEFAULT_PASSWORD, [DEFAULT_IDENTITY_ID])
        state.put("departments", {"Id": DEPARTMENT_ID, "Name": "Qondor"})
        for number, category, product, rate in _PRODUCTS:
            save_category(state, {"Id": number, "Name": category, "No": str(number)})
            state.put("products", {"Id": number, "Name": product, "No": f"P{number}", "CategoryId": number,
                                   "TaxRate": Decimal(rate), "Price": Decimal(0), "InPrice": Decimal(0),
                                   "StatusId": 1, "DateChanged": state.now()})
        state.put("project_statuses", {"Id": STATUS_ACTIVE_ID, "Name": "Aktiv", "Active": True})
        state.put("project_statuses", {"Id": STATUS_CLOSED_ID, "Name": "Avsluttet", "Active": False})
        state.put("project_types", {"Id": PROJECT_TYPE_ID, "Name": "Arrangement"})
        state.put("payment_methods", {"Id": CARD_PAYMENT_METHOD_ID, "Name": "Kortbetaling"})
        state.put("payment_methods", {"Id": 2, "Name": "Bank"})
        for number, name, tax in _ACCOUNTS:
            state.put("accounts", {"Id": number, "AccountNo": number, "AccountName": name, "AccountTax": tax,
                                   "TaxNo": tax})
        for code, name, rate, account in _VAT_TYPES:
            state.put("vat_types", {"Id": code, "No": code, "Name": name, "Rate": Decimal(rate), "AccountNo": account})


def from_json(value: Any, key: str = "") -> Any:
    """JSON -> entity values: ISO strings in ``Date*`` fields become datetimes, floats become Decimals."""
    if isinstance(value, dict):
        return {k: from_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v, key) for v in value]
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str) and key.startswith("Date") and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    return value


def _plain(table: str) -> Callable[[FinagoState, dict[str, Any]], dict[str, Any]]:
    def store(state: FinagoState, entity: dict[str, Any]) -> dict[str, Any]:
        return state.put(table, entity)

    return store


def _account(state: FinagoState, entity: dict[str, Any]) -> dict[str, Any]:
    entity.setdefault("Id", entity["AccountNo"])
    return state.put("accounts", entity)


_SAVERS: tuple[tuple[str, Callable[[FinagoState, dict[str, Any]], dict[str, Any]]], ...] = (
    ("departments", _plain("departments")),
    ("categories", save_category),
    ("products", save_product),
    ("vatTypes", _plain("vat_types")),
    ("accounts", _account),
    ("projectStatuses", _plain("project_statuses")),
    ("projectTypes", _plain("project_types")),
    ("paymentMethods", _plain("payment_methods")),
    ("companies", save_company),
    ("projects", save_project),
)


def apply_seed(state: FinagoState, doc: dict[str, Any]) -> dict[str, list[Any]]:
    """Apply a seed document (module docstring); returns the ids created per key. Raises on bad data."""
    created: dict[str, list[Any]] = {}
    with state.lock:
        for identity in doc.get("identities", []):
            created.setdefault("identities", []).append(
                state.add_identity(identity.get("id"), identity.get("clientName", "Client")).id)
        for cred in doc.get("credentials", []):
            credential = state.add_credential(cred["applicationId"], cred["username"], cred["password"],
                                              cred.get("identityIds"))
            created.setdefault("credentials", []).append(credential.username)
        for key, save in _SAVERS:
            for entity in doc.get(key, []):
                created.setdefault(key, []).append(save(state, from_json(entity))["Id"])
    return created
