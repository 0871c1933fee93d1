"""Helpers every service shares: the two error channels, partial updates and return-property selection."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from accounting.finago.emulator.soap import SoapFault, server_fault

NOT_FOUND = "Office24Seven.Library.Core.ParameterNotFoundException"
VALIDATION = "Office24Seven.Library.Core.ValidationException"
NO_SEARCH_PARAMETER = "Please specify at least one search parameter"


class ItemError(Exception):
    """A per-item error of a ``Save*`` call: the item comes back with ``APIException`` and HTTP 200."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message

    def api_exception(self) -> dict[str, str]:
        return {"Type": self.type, "Message": self.message,
                "StackTrace": f"   at Office24Seven.WebServices.Save() in {self.type}"}


def not_found(what: str, value: Any) -> ItemError:
    return ItemError(NOT_FOUND, f"{what} with id {value} was not found")


def required(what: str) -> ItemError:
    return ItemError(VALIDATION, f"{what} is required")


def search_fault() -> SoapFault:
    return server_fault(NO_SEARCH_PARAMETER)


_INT_SENTINELS = frozenset({-(2**31), -(2**15)})
_DECIMAL_MIN = Decimal("-79228162514264337593543950335")


def _unset(value: Any) -> bool:
    """.NET's "not set" values: absent/nil (None), ``""`` and the MinValue sentinels (NOTES.md §0.6)."""
    if value is None or value == "":
        return True
    if type(value) is int:
        return value in _INT_SENTINELS
    if isinstance(value, Decimal):
        return value == _DECIMAL_MIN
    return isinstance(value, datetime) and value.replace(tzinfo=None) == datetime.min


def clean(value: Any, keep_empty: bool = False) -> Any:
    """The values a client actually sent: zeep parses absent and ``xsi:nil`` elements as None; drop them and
    the .NET "not set" sentinels, and make aware datetimes naive UTC (the emulator's time base). With
    ``keep_empty`` (the Save* operations) an empty string is a value: a string the client sent empty clears the
    field (a .NET string is "not set" only when absent or nil)."""
    if keep_empty and value == "":
        return value
    if _unset(value):
        return None
    if isinstance(value, dict):
        cleaned = {key: clean(item, keep_empty) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item is not None}
    if isinstance(value, list):
        return [item for item in (clean(item, keep_empty) for item in value) if item is not None]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def merge(target: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Partial update: only the fields sent change; nested objects (addresses, e-mails) merge per field."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict) and not _is_array(value):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _is_array(value: dict[str, Any]) -> bool:
    return len(value) == 1 and isinstance(next(iter(value.values())), list)


def public(entity: dict[str, Any]) -> dict[str, Any]:
    """The entity without the emulator's ``_bookkeeping`` keys (a deep copy, safe to render outside the lock)."""
    return {key: copy.deepcopy(value) for key, value in entity.items() if not key.startswith("_")}


def select(entity: dict[str, Any], properties: Iterable[str] | None) -> dict[str, Any]:
    """Only the requested return properties; ``Addresses.Invoice`` style paths select nested parts."""
    result: dict[str, Any] = {}
    for prop in properties or ():
        head, _, rest = prop.partition(".")
        if head.startswith("_") or head not in entity:
            continue
        value = entity[head]
        if rest and isinstance(value, dict):
            part = select(value, [rest])
            if part:
                result[head] = merge(result.get(head, {}), part)
        else:
            result[head] = copy.deepcopy(value)
    return result


def strings(array: dict[str, Any] | None, key: str = "string") -> list[str]:
    """``ArrayOfString``/``ArrayOfInt`` as a list (zeep gives ``{"string": [...]}``)."""
    return list((array or {}).get(key) or [])


def like(pattern: str, value: str | None) -> bool:
    """SQL ``LIKE`` as 24SevenOffice's name searches use it: ``%`` is any text, case-insensitive."""
    regex = ".*".join(re.escape(part) for part in pattern.split("%"))
    return value is not None and re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL) is not None


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))
