"""ProductService: products and product categories (every product belongs to a category)."""

from __future__ import annotations

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


def save_product(state: FinagoState, product: dict[str, Any]) -> dict[str, Any]:
    """Create (needs Name and an existing CategoryId) or update an existing Id (only sent fields change)."""
    with state.lock:
        product = {k: v for k, v in product.items() if k not in ("APIException", "DateChanged")}
        if "CategoryId" in product and state.get("categories", product["CategoryId"]) is None:
            raise not_found("Category", product["CategoryId"])
        if product.get("Id"):
            existing = state.get("products", product["Id"])
            if existing is None:
                raise not_found("Product", product["Id"])
            merge(existing, product)
            existing["DateChanged"] = state.now()
            return existing
        for field in ("Name", "CategoryId"):
            if not product.get(field):
                raise required(field)
        product.setdefault("StatusId", 1)
        product["DateChanged"] = state.now()
        return state.put("products", product)


def save_category(state: FinagoState, category: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        category = {k: v for k, v in category.items() if k != "APIException"}
        existing = state.get("categories", category.get("Id")) if category.get("Id") else None
        if existing is not None:
            return merge(existing, category)
        if not category.get("Name"):
            raise required("Name")
        return state.put("categories", category)


def _save_all(call: Call, items: list[dict[str, Any]], save: Any) -> list[dict[str, Any]]:
    results = []
    for item in items:
        try:
            results.append(public(save(call.state, item)))
        except ItemError as exc:
            results.append({**item, "APIException": exc.api_exception()})
    return results


def save_products(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"Product": _save_all(call, strings(args.get("products"), "Product"), save_product)}


def save_categories(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"Category": _save_all(call, strings(args.get("categories"), "Category"), save_category)}


def _matches(product: dict[str, Any], params: dict[str, Any]) -> bool:
    return all([
        "Id" not in params or product["Id"] == params["Id"],
        "CategoryId" not in params or product.get("CategoryId") == params["CategoryId"],
        "No" not in params or product.get("No") == params["No"],
        "EAN1" not in params or product.get("EAN1") == params["EAN1"],
        "Name" not in params or like(params["Name"], product.get("Name")),
        "Price" not in params or product.get("Price") == params["Price"],
        "DateChanged" not in params or product["DateChanged"] > params["DateChanged"],
        "ProductIds" not in params or product["Id"] in strings(params["ProductIds"], "int"),
    ])


def get_products(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    params = args.get("searchParams") or {}
    if not params:
        raise search_fault()
    props = strings(args.get("returnProperties"))
    with call.state.lock:
        return {"Product": [select(p, props) for p in call.state.all("products") if _matches(p, params)]}


def get_categories(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    props = strings(args.get("returnProperties")) or ["Id", "Name", "No", "ParentId"]
    with call.state.lock:
        return {"Category": [select(c, props) for c in call.state.all("categories")]}


def delete_products(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    failed = []
    with call.state.lock:
        for product in strings(args.get("products"), "Product"):
            if call.state.tables["products"].pop(product.get("Id") or 0, None) is None:
                failed.append({**product, "APIException": not_found("Product", product.get("Id")).api_exception()})
    return {"Product": failed}


OPERATIONS: dict[str, Handler] = {
    "GetProducts": get_products,
    "SaveProducts": save_products,
    "DeleteProducts": delete_products,
    "GetCategories": get_categories,
    "SaveCategories": save_categories,
}
