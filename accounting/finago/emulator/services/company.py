"""CompanyService: SaveCompanies / GetCompanies / GetCompanySyncList / DeleteCompanies."""

from __future__ import annotations

import math
from typing import Any

from accounting.finago.emulator.call import Call, Handler
from accounting.finago.emulator.common import (
    ItemError,
    like,
    merge,
    not_found,
    public,
    required,
    search_fault,
    select,
    strings,
)
from accounting.finago.emulator.state import FinagoState

SYNC_PAGE_SIZE = 1000


def save_company(state: FinagoState, company: dict[str, Any]) -> dict[str, Any]:
    """Create (no Id, or ``ExplicitlySpecifyNewCompanyId``) or update (existing Id: only sent fields change)."""
    with state.lock:
        company = {k: v for k, v in company.items() if k not in ("APIException", "DateChanged", "DateCreated")}
        explicit = company.pop("ExplicitlySpecifyNewCompanyId", False)
        existing = state.get("companies", company.get("Id")) if company.get("Id") else None
        if existing is not None:
            merge(existing, company)
            existing["DateChanged"] = state.now()
            return existing
        if company.get("Id") and not explicit:
            raise not_found("Company", company["Id"])
        if not company.get("Name"):
            raise required("Name")
        company.setdefault("Type", "Business")
        company["DateCreated"] = company["DateChanged"] = state.now()
        company["_active"] = True
        return state.put("companies", company)


def save_companies(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    results = []
    for company in strings(args.get("companies"), "Company"):
        try:
            results.append(public(save_company(call.state, company)))
        except ItemError as exc:
            results.append({**company, "APIException": exc.api_exception()})
    return {"Company": results}


def _values(group: dict[str, Any] | None) -> list[str]:
    return [v.get("Value") for v in (group or {}).values() if isinstance(v, dict) and v.get("Value")]


def _matches(company: dict[str, Any], params: dict[str, Any]) -> bool:
    checks = [
        "ExternalId" not in params or company.get("ExternalId") == params["ExternalId"],
        "CompanyId" not in params or company["Id"] == params["CompanyId"],
        "CompanyIds" not in params or company["Id"] in strings(params["CompanyIds"], "int"),
        "CompanyName" not in params or like(params["CompanyName"], company.get("Name")),
        "ChangedAfter" not in params or company["DateChanged"] > params["ChangedAfter"],
        "CompanyEmail" not in params or params["CompanyEmail"].lower() in
        [v.lower() for v in _values(company.get("EmailAddresses"))],
        "CompanyPhone" not in params or params["CompanyPhone"] in _values(company.get("PhoneNumbers")),
        "OrganizationNumber" not in params or
        (company.get("OrganizationNumber") or "").replace(" ", "") == params["OrganizationNumber"].replace(" ", ""),
    ]
    return all(checks)


def get_companies(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    params = args.get("searchParams") or {}
    if not params:
        raise search_fault()
    props = strings(args.get("returnProperties"))
    with call.state.lock:
        found = [select(c, props) for c in call.state.all("companies") if _matches(c, params)]
    return {"Company": found}


def get_company_sync_list(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    params = args.get("syncSearchParameters") or {}
    with call.state.lock:
        items = [
            {"CompanyId": c["Id"], "ExternalId": c.get("ExternalId"), "DateChanged": c["DateChanged"],
             "DateRegistered": c["DateCreated"], "Active": c.get("_active", True)}
            for c in call.state.all("companies")
            if ("ChangedAfter" not in params or c["DateChanged"] > params["ChangedAfter"])
            and ("RegisteredAfter" not in params or c["DateCreated"] > params["RegisteredAfter"])
            and ("Active" not in params or c.get("_active", True) == params["Active"])
        ]
    page = max(1, params.get("Page") or 1)
    chunk = items[(page - 1) * SYNC_PAGE_SIZE: page * SYNC_PAGE_SIZE]
    return {"CurrentPage": page, "TotalPages": max(1, math.ceil(len(items) / SYNC_PAGE_SIZE)),
            "TotalItems": len(items), "ItemsPerPage": SYNC_PAGE_SIZE, "Items": {"SyncCompany": chunk}}


def delete_companies(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    results = []
    for company in strings(args.get("companies"), "Company"):
        if not call.state.delete_company(company.get("Id") or 0):
            results.append({**company, "APIException": not_found("Company", company.get("Id")).api_exception()})
    return {"Company": results}


OPERATIONS: dict[str, Handler] = {
    "SaveCompanies": save_companies,
    "GetCompanies": get_companies,
    "GetCompanySyncList": get_company_sync_list,
    "DeleteCompanies": delete_companies,
}
