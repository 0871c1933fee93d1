"""Turning stored entities into Tripletex JSON: the ``fields`` projection, ``{id, url}`` references, sorting,
list envelopes with checksums, and Decimal -> JSON number.

``fields`` grammar (spec "Fields"): ``a,b,c``; ``*`` (every field of the resource); ``sub(x,y)``; ``sub(*)``;
nested, e.g. ``*,orders(reference,project(id))``. A reference named without parentheses comes back as
``{"id", "url"}``; ``*`` never expands references. Asking for a field the model does not have, or for
sub-fields of a scalar (``creditedInvoice(id)``: ``creditedInvoice`` is an int64), is 400 code 11000.

With ``*`` (and without ``fields``, which means ``*``) every field the spec lists for the object is sent, as
the real service does: unset ones as null (lists of objects as ``[]``), so a client that expects e.g. an employee's
``department`` finds the key. Left out unless named: ``changes`` (spec: "only when requested") and the fields
the spec or observation marks as on demand (``ON_DEMAND``). A field named explicitly is always sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from accounting.tripletex.emulator.errors import ApiError
from accounting.tripletex.emulator.schema import SCHEMA_TABLES, SCHEMAS

FieldTree = dict[str, "FieldTree | None"]
"""Parsed ``fields``: name -> sub-selection (None = not expanded). The key ``*`` selects every field."""

ALL: FieldTree = {"*": None}
TABLE_SCHEMAS: dict[str, str] = {table: schema for schema, table in SCHEMA_TABLES.items()}
URL_SEGMENTS: dict[str, str] = {
    "orderLine": "order/orderline", "paymentType": "invoice/paymentType", "vatType": "ledger/vatType",
    "projectInvoiceDetails": "invoice/details", "sessionToken": "token/session", "voucher": "ledger/voucher",
    "voucherType": "ledger/voucherType", "posting": "ledger/posting", "account": "ledger/account",
}
ON_DEMAND: dict[str, frozenset[str]] = {
    "Product": frozenset({"stockOfGoods", "availableStock", "incomingStock", "outgoingStock"}),  # spec
    "Project": frozenset({"preliminaryInvoice"}),  # observed (NOTES.md §4)
}
"""Fields ``*`` does not include: sent only when named in ``fields``."""


def _illegal_fields(detail: str) -> ApiError:
    return ApiError(400, 11000, f"Illegal field in fields filter: {detail}")


def parse_fields(text: str | None) -> FieldTree:
    """Parse the ``fields`` parameter (empty or absent means ``*``)."""
    if text is None or not text.strip():
        return dict(ALL)
    tree, pos = _parse_list(text, 0)
    if pos != len(text):
        raise _illegal_fields(text)
    return tree


def _parse_list(text: str, pos: int) -> tuple[FieldTree, int]:
    tree: FieldTree = {}
    while True:
        start = pos
        while pos < len(text) and text[pos] not in ",()":
            pos += 1
        name = text[start:pos].strip()
        if not name:
            raise _illegal_fields(text)
        sub: FieldTree | None = None
        if pos < len(text) and text[pos] == "(":
            sub, pos = _parse_list(text, pos + 1)
            if pos >= len(text) or text[pos] != ")":
                raise _illegal_fields(text)
            pos += 1
            while pos < len(text) and text[pos] == " ":
                pos += 1
        tree[name] = sub if name not in tree or tree[name] is None else {**(tree[name] or {}), **(sub or {})}
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        return tree, pos


def to_json(value: Any) -> Any:
    """Decimals become JSON numbers written like doubles (``1250.5``, ``0.0``; the shortest exact form), recursively."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


class Renderer:
    """Projects entities for one request (``host`` makes the reference URLs, like ``tripletex.no/v2/...``)."""

    def __init__(self, lookup: Callable[[str, Any], dict[str, Any] | None], host: str) -> None:
        self._lookup = lookup
        self._host = host

    def url(self, table: str, entity_id: Any) -> str:
        return f"{self._host}/v2/{URL_SEGMENTS.get(table, table)}/{entity_id}"

    def entity(self, table: str, entity: dict[str, Any], tree: FieldTree | None = None) -> dict[str, Any]:
        """One stored entity of ``table`` projected by ``tree`` (default ``*``)."""
        url = self.url(table, entity["id"]) if entity.get("id") is not None else None
        return self.project(TABLE_SCHEMAS[table], entity, tree or ALL, url)

    def project(self, schema: str, data: dict[str, Any], tree: FieldTree, url: str | None = None) -> dict[str, Any]:
        """Project any dict shaped like spec schema ``schema``."""
        props = SCHEMAS[schema]
        names: list[str] = []
        if "*" in tree:
            hidden = ON_DEMAND.get(schema, frozenset())
            names += [k for k in props if k != "changes" and k not in hidden]
        names += [k for k in tree if k != "*" and k not in names]
        out: dict[str, Any] = {}
        for name in names:
            if name not in props:
                raise _illegal_fields(f"{name}. {name} does not match a field in the model: {schema}DTO")
            kind, target, _, _ = props[name]
            sub = tree.get(name)
            if name == "url":
                out[name] = url
            elif name == "changes":
                out[name] = []
            elif kind == "ref":
                out[name] = self._reference(target, data.get(name), sub)
            elif kind == "refs":
                out[name] = [self._reference(target, item, sub) for item in data.get(name) or []]
            elif sub is not None:
                raise _illegal_fields(f"{name}({','.join(sub)}). {name} is not an object in the model: {schema}DTO")
            else:
                out[name] = to_json(data.get(name))
        return out

    def _reference(self, schema: str | None, ref: Any, sub: FieldTree | None) -> dict[str, Any] | None:
        if not isinstance(ref, dict):
            return None
        table = SCHEMA_TABLES.get(schema or "")
        if sub is None:
            if table is None or ref.get("id") is None:
                return to_json({k: v for k, v in ref.items() if k in ("id", "url")})
            return {"id": ref["id"], "url": self.url(table, ref["id"])}
        stored = self._lookup(table, ref.get("id")) if table and ref.get("id") is not None else None
        if stored is None:
            stored = ref
        if schema not in SCHEMAS:  # a schema the emulator does not model: only what was stored
            return to_json({k: v for k, v in stored.items() if "*" in sub or k in sub})
        url = self.url(table, stored["id"]) if table and stored.get("id") is not None else None
        return self.project(schema, stored, sub, url)


def sort_entities(entities: list[dict[str, Any]], sorting: str | None, schema: str) -> list[dict[str, Any]]:
    """Sort by the ``sorting`` parameter (``a,-b,project.name``); unknown fields are 422 code 17000."""
    result = sorted(entities, key=lambda e: e["id"])
    if not sorting or not sorting.strip():
        return result
    keys = [k.strip() for k in sorting.split(",") if k.strip()]
    for key in reversed(keys):
        descending = key.startswith("-")
        path = key.lstrip("-").split(".")
        if path[0] not in SCHEMAS[schema]:
            raise ApiError(422, 17000, f"Illegal sorting field: {key}")
        if path == ["id"]:  # ids are always set: a cheap key for the large lists paged by id
            result.sort(key=lambda e: e["id"], reverse=descending)
            continue
        result.sort(key=lambda e, p=path: _sort_value(e, p), reverse=descending)
    return result


def _sort_value(entity: dict[str, Any], path: list[str]) -> tuple[bool, str, Any]:
    value: Any = entity
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, int | float | Decimal):
        return (value is not None, "n", Decimal(value))
    return (value is not None, "s", "" if value is None else str(value))


def list_envelope(values: list[dict[str, Any]], total: int, start: int, *, checksum: bool) -> dict[str, Any]:
    """The list envelope; ``versionDigest`` is a checksum of the page when asked for (If-None-Match), else null."""
    digest = None
    if checksum:
        payload = json.dumps([total, start, values], sort_keys=True, default=str).encode()
        digest = hashlib.sha256(payload).hexdigest()[:32]
    return {"fullResultSize": total, "from": start, "count": len(values), "versionDigest": digest, "values": values}


def page(items: Iterable[dict[str, Any]], start: int, count: int) -> tuple[list[dict[str, Any]], int]:
    """The ``from``/``count`` slice and the full size."""
    items = list(items)
    return items[start:start + count], len(items)
