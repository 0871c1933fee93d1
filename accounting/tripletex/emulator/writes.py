"""Write rules for the master data: body checking shared by every POST/PUT, then customers, contacts,
employees (and their entitlements), projects and products.

What is enforced, and why (NOTES.md §5, §7-§10, §20):

* the body must be an object of the spec's model: an unknown property is 422 code 16000, a value of the
  wrong JSON type or outside an enum is 422 code 16000; read-only properties are ignored;
* references (``{"customer": {"id": 1}}``) must point at an existing entity (422 code 18000 otherwise);
  addresses may be given inline and are created behind the owner, as in Tripletex;
* ``version`` in a PUT body must equal the stored version (409 code 8000), and every change bumps it;
* the entity rules below, each a 422 code 18000 naming the field.

Nothing here is idempotent: two POSTs make two entities, exactly like the real API.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from accounting.tripletex.emulator.errors import ApiError, unknown_property, validation
from accounting.tripletex.emulator.schema import SCHEMA_TABLES, SCHEMAS
from accounting.tripletex.emulator.state import ENTITLEMENT_TEMPLATES, PROJECT_MANAGER_TEMPLATES, TripletexState

INLINE_TABLES: dict[tuple[str, str], str] = {
    ("customer", "postalAddress"): "address",
    ("customer", "physicalAddress"): "address",
    ("customer", "deliveryAddress"): "deliveryAddress",
    ("employee", "address"): "address",
    ("project", "deliveryAddress"): "address",
    ("order", "deliveryAddress"): "deliveryAddress",
}
"""Owned sub-objects created (or updated, when they carry their id) from the owner's body."""

_ORG_NUMBER = re.compile(r"^\d{9}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


# ---------------------------------------------------------------------------------------------- body checks


def check_body(schema: str, body: Any, prefix: str = "") -> dict[str, Any]:
    """The writable part of ``body`` after checking it against the spec model ``schema``.

    Numbers become ``Decimal``; nested objects of modelled schemas are checked recursively.
    """
    if not isinstance(body, dict):
        raise ApiError(422, 16000, "Validation failed.", validation_messages=[(prefix.rstrip(".") or None,
                                                                               "Expected a JSON object.")])
    props = SCHEMAS[schema]
    out: dict[str, Any] = {}
    for name, value in body.items():
        field = prefix + name
        if name not in props:
            raise unknown_property(field, schema)
        kind, target, read_only, enum = props[name]
        if read_only:
            continue
        out[name] = None if value is None else _check_value(field, kind, target, enum, value)
    return out


def _mapping_error(field: str, value: Any) -> ApiError:
    return ApiError(422, 16000, "Validation failed.", validation_messages=[(field, f"Invalid value: {value!r}.")])


def _check_value(field: str, kind: str, target: str | None, enum: tuple[str, ...] | None, value: Any) -> Any:
    if kind == "ref":
        return check_body(target, value, field + ".") if target in SCHEMAS else _require_object(field, value)
    if kind in ("refs", "array"):
        if not isinstance(value, list):
            raise _mapping_error(field, value)
        if kind == "array":
            return list(value)
        return [check_body(target, v, field + ".") if target in SCHEMAS else _require_object(field, v)
                for v in value]
    if kind == "string":
        if not isinstance(value, str) or (enum and value not in enum):
            raise _mapping_error(field, value)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _mapping_error(field, value)
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _mapping_error(field, value)
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise _mapping_error(field, value)
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise _mapping_error(field, value) from exc
    return value


def _require_object(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _mapping_error(field, value)
    return dict(value)


def parse_date(value: Any, field: str) -> date:
    """A ``YYYY-MM-DD`` string, else 422 naming ``field``."""
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise validation(field, "Invalid date, expected YYYY-MM-DD.") from None


def require_fields(data: dict[str, Any], *names: str, prefix: str = "") -> None:
    """422 listing every required field that is absent, null or empty."""
    missing = [(prefix + n, "The field is required.") for n in names if data.get(n) in (None, "", [])]
    if missing:
        raise ApiError(422, 18000, "Validation failed.", validation_messages=missing)


def check_version(entity: dict[str, Any], data: dict[str, Any]) -> None:
    """Optimistic locking: a PUT carrying a stale ``version`` is 409 code 8000 (RevisionException)."""
    if data.get("version") is not None and data["version"] != entity["version"]:
        raise ApiError(
            409, 8000, "The object has been changed by someone else since you fetched it.",
            developer_message=f"RevisionException: version {data['version']} != {entity['version']}",
        )


def store_references(state: TripletexState, table: str, data: dict[str, Any], prefix: str = "") -> None:
    """Replace reference objects in ``data`` by ``{"id": n}`` after checking they exist (in place)."""
    schema = next(s for s, t in SCHEMA_TABLES.items() if t == table)
    for name, value in list(data.items()):
        kind, target, _, _ = SCHEMAS[schema][name]
        if value is None or kind != "ref":
            continue
        field = prefix + name
        inline = INLINE_TABLES.get((table, name))
        target_table = SCHEMA_TABLES.get(target or "")
        if inline is not None:
            data[name] = {"id": _store_inline(state, inline, value, field)}
        elif target_table in state.tables:
            if value.get("id") is None:
                raise validation(f"{field}.id", "A reference must give the id of an existing object.")
            if state.get(target_table, value["id"]) is None:
                raise validation(f"{field}.id", f"Object {value['id']} does not exist.")
            data[name] = {"id": int(value["id"])}


def _store_inline(state: TripletexState, table: str, value: dict[str, Any], field: str) -> int:
    value = {k: v for k, v in value.items() if k not in ("version", "url", "changes")}
    if value.get("id") is not None:
        existing = state.get(table, value["id"])
        if existing is None:
            raise validation(f"{field}.id", f"Object {value['id']} does not exist.")
        if len(value) > 1:
            existing.update({k: v for k, v in value.items() if k != "id"})
            state.touch(existing)
        return existing["id"]
    return state.insert(table, value)["id"]


def _apply_update(state: TripletexState, table: str, entity: dict[str, Any], data: dict[str, Any]) -> None:
    check_version(entity, data)
    data = {k: v for k, v in data.items() if k not in ("id", "version")}
    store_references(state, table, data)
    entity.update(data)
    state.touch(entity)


def _new(data: dict[str, Any], pin_id: int | None) -> dict[str, Any]:
    entity = {k: v for k, v in data.items() if k not in ("id", "version")}
    if pin_id is not None:
        entity["id"] = pin_id
    return entity


# ---------------------------------------------------------------------------------------------- customer


def _check_customer(data: dict[str, Any]) -> None:
    org = data.get("organizationNumber")
    if org not in (None, "") and not _ORG_NUMBER.match(org):
        raise validation("organizationNumber", "The organization number must consist of 9 numbers and cannot "
                                               "have any spaces.")
    for name in ("email", "invoiceEmail", "overdueNoticeEmail"):
        if data.get(name) not in (None, "") and not _EMAIL.match(data[name]):
            raise validation(name, "Invalid e-mail address.")


def create_customer(state: TripletexState, body: Any, pin_id: int | None = None) -> dict[str, Any]:
    """POST /customer. Duplicates (same organisation number, same e-mail) are allowed, as in Tripletex."""
    data = check_body("Customer", body)
    require_fields(data, "name")
    _check_customer(data)
    entity = _new(data, pin_id)
    store_references(state, "customer", entity)
    number = entity.get("customerNumber") or state.next_number("customer", 10_000)
    entity.update(customerNumber=number, isCustomer=True)
    for key, default in (("isSupplier", False), ("isInactive", False), ("isPrivateIndividual", False),
                         ("language", "NO"), ("invoicesDueIn", 14), ("invoicesDueInType", "DAYS"),
                         ("currency", {"id": 1}), ("displayName", f"{data['name']} ({number})")):
        entity.setdefault(key, default)
    return state.insert("customer", entity)


def update_customer(state: TripletexState, customer_id: int, body: Any) -> dict[str, Any]:
    entity = state.require("customer", customer_id)
    data = check_body("Customer", body)
    if "name" in data:
        require_fields(data, "name")
    _check_customer(data)
    _apply_update(state, "customer", entity, data)
    entity["displayName"] = f"{entity['name']} ({entity['customerNumber']})"
    return entity


# ---------------------------------------------------------------------------------------------- contact


def create_contact(state: TripletexState, body: Any, pin_id: int | None = None) -> dict[str, Any]:
    """POST /contact (first name required; the real API's full rule set is undocumented)."""
    data = check_body("Contact", body)
    require_fields(data, "firstName")
    if data.get("email") not in (None, "") and not _EMAIL.match(data["email"]):
        raise validation("email", "Invalid e-mail address.")
    entity = _new(data, pin_id)
    store_references(state, "contact", entity)
    entity.setdefault("isInactive", False)
    entity["displayName"] = " ".join(p for p in (entity.get("firstName"), entity.get("lastName")) if p)
    return state.insert("contact", entity)


def update_contact(state: TripletexState, contact_id: int, body: Any) -> dict[str, Any]:
    entity = state.require("contact", contact_id)
    data = check_body("Contact", body)
    if data.get("email") not in (None, "") and not _EMAIL.match(data["email"]):
        raise validation("email", "Invalid e-mail address.")
    _apply_update(state, "contact", entity, data)
    entity["displayName"] = " ".join(p for p in (entity.get("firstName"), entity.get("lastName")) if p)
    return entity


# ---------------------------------------------------------------------------------------------- employee


def _check_employee(state: TripletexState, entity: dict[str, Any], own_id: int | None) -> None:
    require_fields(entity, "firstName", "lastName", "userType")
    email = entity.get("email")
    if email in (None, ""):
        if entity["userType"] != "NO_ACCESS":
            raise validation("email", "Required for Tripletex users (userType STANDARD or EXTENDED).")
        return
    if not email.isascii() or not _EMAIL.match(email):
        raise validation("email", "Invalid format.")
    for other in state.all("employee"):
        if other["id"] != own_id and (other.get("email") or "").lower() == email.lower():
            raise validation("email", "A user with this e-mail address already exists.")


def create_employee(state: TripletexState, body: Any, pin_id: int | None = None) -> dict[str, Any]:
    """POST /employee: first/last name and userType required; e-mail required unless NO_ACCESS; unique."""
    data = check_body("Employee", body)
    entity = _new(data, pin_id)
    _check_employee(state, entity, None)
    store_references(state, "employee", entity)
    entity["displayName"] = f"{entity['firstName']} {entity['lastName']}"
    entity.setdefault("isContact", False)
    entity["companyId"] = state.company["id"]
    return state.insert("employee", entity)


def update_employee(state: TripletexState, employee_id: int, body: Any) -> dict[str, Any]:
    entity = state.require("employee", employee_id)
    data = check_body("Employee", body)
    _check_employee(state, {**entity, **data}, entity["id"])
    _apply_update(state, "employee", entity, data)
    entity["displayName"] = f"{entity['firstName']} {entity['lastName']}"
    return entity


def grant_entitlements(state: TripletexState, employee_id: int, template: str) -> None:
    """PUT /employee/entitlement/:grantEntitlementsByTemplate. NONE_PRIVILEGES revokes everything."""
    if template not in ENTITLEMENT_TEMPLATES:
        raise validation("template", f"Unknown template {template!r}.")
    if state.get("employee", employee_id) is None:
        raise validation("employeeId", f"Employee {employee_id} does not exist.")
    granted = state.entitlements.setdefault(employee_id, set())
    if template == "NONE_PRIVILEGES":
        granted.clear()
    else:
        granted.add(template)


def is_project_manager(state: TripletexState, employee_id: int) -> bool:
    return bool(state.entitlements.get(employee_id, set()) & PROJECT_MANAGER_TEMPLATES)


# ---------------------------------------------------------------------------------------------- project


def _check_project(state: TripletexState, entity: dict[str, Any], own_id: int | None) -> None:
    require_fields(entity, "name", "startDate", "projectManager")
    start = parse_date(entity["startDate"], "startDate")
    if entity.get("endDate") and parse_date(entity["endDate"], "endDate") < start:
        raise validation("endDate", "The end date cannot be before the start date.")
    manager_id = entity["projectManager"]["id"]
    if not is_project_manager(state, manager_id):
        raise validation("projectManager.id", "The given project manager has not been granted project manager "
                                              "access in the account.")
    number = entity.get("number")
    if number and any(p.get("number") == number and p["id"] != own_id for p in state.all("project")):
        raise validation("number", f"The project number {number} is already in use.")


def _project_derived(state: TripletexState, entity: dict[str, Any]) -> None:
    entity["displayName"] = f"{entity['number']} {entity['name']}"
    customer = state.get("customer", (entity.get("customer") or {}).get("id"))
    entity["customerName"] = customer["name"] if customer else None
    manager = state.get("employee", entity["projectManager"]["id"])
    if manager:
        entity["projectManagerNameAndNumber"] = manager["displayName"]


def create_project(state: TripletexState, body: Any, pin_id: int | None = None) -> dict[str, Any]:
    """POST /project: name, startDate and a project manager with project-manager access; number unique,
    generated when null."""
    data = check_body("Project", body)
    entity = _new(data, pin_id)
    store_references(state, "project", entity)
    _check_project(state, entity, None)
    if not entity.get("number"):
        used = {p.get("number") for p in state.all("project")}
        number = state.next_number("project")
        while str(number) in used:
            number = state.next_number("project")
        entity["number"] = str(number)
    for key, default in (("isClosed", False), ("isInternal", entity.get("customer") is None), ("isOffer", False),
                         ("isFixedPrice", False), ("isReadyForInvoicing", False), ("currency", {"id": 1})):
        entity.setdefault(key, default)
    _project_derived(state, entity)
    return state.insert("project", entity)


def update_project(state: TripletexState, project_id: int, body: Any) -> dict[str, Any]:
    """PUT /project/{id}: omitted fields are kept (observed on the real API)."""
    entity = state.require("project", project_id)
    data = check_body("Project", body)
    merged = {**entity, **data}
    store_references(state, "project", merged)
    _check_project(state, merged, entity["id"])
    _apply_update(state, "project", entity, data)
    _project_derived(state, entity)
    return entity


# ---------------------------------------------------------------------------------------------- product


def create_product(state: TripletexState, body: Any, pin_id: int | None = None) -> dict[str, Any]:
    """Products (seeded; the client only reads them): name required, number unique."""
    data = check_body("Product", body)
    require_fields(data, "name")
    number = data.get("number")
    if number and any(p.get("number") == number for p in state.all("product")):
        raise validation("number", f"The product number {number} is already in use.")
    entity = _new(data, pin_id)
    store_references(state, "product", entity)
    entity.setdefault("vatType", {"id": 3})
    entity.setdefault("currency", {"id": 1})
    entity.setdefault("isInactive", False)
    vat = state.get("vatType", entity["vatType"]["id"])
    rate = 1 + (vat["percentage"] if vat else Decimal(0)) / 100
    if entity.get("priceExcludingVatCurrency") is not None and entity.get("priceIncludingVatCurrency") is None:
        entity["priceIncludingVatCurrency"] = (entity["priceExcludingVatCurrency"] * rate).quantize(Decimal("0.01"))
    if entity.get("priceIncludingVatCurrency") is not None and entity.get("priceExcludingVatCurrency") is None:
        entity["priceExcludingVatCurrency"] = (entity["priceIncludingVatCurrency"] / rate).quantize(Decimal("0.01"))
    entity["displayNumber"] = number
    return state.insert("product", entity)
