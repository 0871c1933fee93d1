"""TransactionService: GetTransactions over the ledger (see ``ledger.py``) and GetTransactionTypes.

Date windows are inclusive on both ends and compare full timestamps, like the real service: with
``DateSearchParameters=DateChangedUTC`` a DateEnd of midnight excludes that day's later changes, so clients
send 23:59:59. ``EntryDate`` (the default) compares the entry's voucher date (a midnight timestamp).
``ShowOpenEntries=true`` returns only open entries; false or absent applies no filter. ``SystemType`` and
``HasInvoiceId`` must be sent (``xsi:nil`` for no filter; ``wsdl.SchemaIndex`` refuses a search without them);
a value filters. ``TransactionNoStart``/``TransactionNoEnd`` are inclusive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accounting.finago.emulator.call import Call, Handler
from accounting.finago.emulator.ledger import TRANSACTION_TYPES
from accounting.finago.emulator.soap import server_fault


def _matches(entry: dict[str, Any], params: dict[str, Any]) -> bool:
    stamp = entry["DateChanged"] if params.get("DateSearchParameters") == "DateChangedUTC" else entry["Date"]
    if not params["DateStart"] <= stamp <= params["DateEnd"]:  # first: most entries fail here (large ledgers)
        return False
    return all([
        not params.get("ShowOpenEntries") or entry["Open"],
        "LinkId" not in params or entry["LinkId"] == params["LinkId"],
        "ProjectId" not in params or entry.get("_project_id") == params["ProjectId"],
        "CustomerId" not in params or entry.get("_customer_id") == params["CustomerId"],
        "DepartmentId" not in params or entry.get("_department_id") == params["DepartmentId"],
        "AccountNoStart" not in params or entry["AccountNo"] >= params["AccountNoStart"],
        "AccountNoEnd" not in params or entry["AccountNo"] <= params["AccountNoEnd"],
        "TransactionNoStart" not in params or entry["TransactionNo"] >= params["TransactionNoStart"],
        "TransactionNoEnd" not in params or entry["TransactionNo"] <= params["TransactionNoEnd"],
        "TransactionTypeId" not in params or entry["TransactionTypeId"] == params["TransactionTypeId"],
        "SystemType" not in params or entry["SystemType"] == params["SystemType"],
        "RegisteredAfter" not in params or entry["RegistrationDate"] > params["RegisteredAfter"],
        "HasInvoiceId" not in params or bool(entry.get("InvoiceNo")) == params["HasInvoiceId"],
        "InvoiceNo" not in params or entry.get("InvoiceNo") == params["InvoiceNo"],
        "VatCode" not in params or entry.get("VatCode") == params["VatCode"],
    ])


def _rendered(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry without bookkeeping; a shallow copy is enough (``ledger.py`` replaces ``Dimensions`` rather than
    changing it in place) and keeps a read of a large ledger fast."""
    return {key: value for key, value in entry.items() if not key.startswith("_")}


def get_transactions(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    params = dict(args.get("searchParams") or {})
    if not isinstance(params.get("DateStart"), datetime) or not isinstance(params.get("DateEnd"), datetime):
        raise server_fault("DateStart and DateEnd must be specified")
    with call.state.lock:
        by_entry_date = params.get("DateSearchParameters") != "DateChangedUTC"
        candidates = (call.state.entries_dated(params["DateStart"], params["DateEnd"]) if by_entry_date
                      else call.state.transactions)
        found = [_rendered(t) for t in candidates if _matches(t, params)]
    return {"Transaction": found}


def get_transaction_types(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"TransactionType": [{"Id": i, "No": no, "Title": title, "Turnover": turnover}
                                for i, no, title, turnover in TRANSACTION_TYPES]}


OPERATIONS: dict[str, Handler] = {
    "GetTransactions": get_transactions,
    "GetTransactionTypes": get_transaction_types,
}
