"""ClientService and AccountService: the reference data a sync reads (departments, VAT types, accounts)."""

from __future__ import annotations

from typing import Any

from accounting.finago.emulator.call import Call, Handler
from accounting.finago.emulator.common import public


def _listing(table: str, item: str) -> Handler:
    def handler(call: Call, args: dict[str, Any]) -> dict[str, Any]:
        return {item: [public(row) for row in call.state.all(table)]}

    return handler


def get_account_list(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"AccountData": [{"AccountId": a["Id"], "AccountNo": a["AccountNo"], "AccountName": a["AccountName"],
                             "AccountTax": a.get("AccountTax", 0), "TaxNo": a.get("TaxNo", 0)}
                            for a in call.state.all("accounts")]}


def get_tax_code_list(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"TaxCodeElement": [{"TaxId": v["Id"], "TaxNo": str(v["No"]), "TaxName": v["Name"], "TaxRate": v["Rate"],
                                "AccountNo": v.get("AccountNo")} for v in call.state.all("vat_types")]}


def get_vat_type_list(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"VatType": [{"No": v["No"], "Name": v["Name"], "Rate": v["Rate"]} for v in call.state.all("vat_types")]}


CLIENT_OPERATIONS: dict[str, Handler] = {
    "GetDepartmentList": _listing("departments", "Department"),
    "GetVatTypeList": get_vat_type_list,
}
ACCOUNT_OPERATIONS: dict[str, Handler] = {
    "GetAccountList": get_account_list,
    "GetTaxCodeList": get_tax_code_list,
}
