"""JSON on the emulator's wire: exact decimals as JSON numbers, Qondor-shaped error bodies.

Why a hand-written encoder: pydantic's JSON mode and Starlette's ``JSONResponse`` turn ``Decimal`` into a
string or a float. Qondor (a .NET backend) sends amounts as JSON numbers, and money must survive the trip
to the øre, so decimals are written verbatim (``format(d, "f")``) and read back with ``parse_float=Decimal``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from starlette.responses import Response

PROBLEM_BINDING_TYPE = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
"""ProblemDetails ``type`` of ASP.NET model-binding errors (these carry a ``traceId``) — API.md §4."""
PROBLEM_VALIDATION_TYPE = "https://tools.ietf.org/html/rfc7231#section-6.5.1"
"""ProblemDetails ``type`` of FluentValidation business-rule errors (no ``traceId``) — API.md §4."""
PROBLEM_NOT_FOUND_TYPE = "https://tools.ietf.org/html/rfc9110#section-15.5.5"
VALIDATION_TITLE = "One or more validation errors occurred."


def dumps(value: Any) -> str:
    """Serialise to JSON text; ``Decimal`` as an exact number, datetimes as ISO 8601 (UTC as ``Z``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return dumps(value.value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send non-finite decimal {value}")
        return format(value, "f")
    if isinstance(value, int | float | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return json.dumps(format_datetime(value))
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def loads(data: bytes | str) -> Any:
    """Parse JSON keeping non-integer numbers as exact ``Decimal``."""
    return json.loads(data, parse_float=Decimal)


def format_datetime(value: datetime) -> str:
    """ISO 8601; aware datetimes are converted to UTC and written with ``Z`` like Qondor's ``…Utc`` fields."""
    if value.tzinfo is not None:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                  media_type: str = "application/json; charset=utf-8") -> Response:
    return Response(dumps(data).encode("utf-8"), status_code=status, headers=dict(headers or {}),
                    media_type=media_type)


def new_trace_id() -> str:
    """A W3C traceparent-style id (``00-<32 hex>-<16 hex>-00``) like ASP.NET puts in ``traceId``."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


def binding_problem(errors: Mapping[str, list[str]]) -> Response:
    """400 for a request the framework could not bind (bad types, malformed JSON, missing parameters)."""
    body = {"type": PROBLEM_BINDING_TYPE, "title": VALIDATION_TITLE, "status": 400, "errors": dict(errors),
            "traceId": new_trace_id()}
    return json_response(body, 400, media_type="application/problem+json; charset=utf-8")


def validation_problem(errors: Mapping[str, list[str]]) -> Response:
    """400 for a well-formed request that breaks a business rule (FluentValidation style, no traceId)."""
    body = {"type": PROBLEM_VALIDATION_TYPE, "title": VALIDATION_TITLE, "status": 400, "errors": dict(errors)}
    return json_response(body, 400, media_type="application/problem+json; charset=utf-8")


def not_found(detail: str) -> Response:
    """404 body. Qondor's real 404 body is not public (API.md §4, §9.5); this is the ASP.NET default shape."""
    body = {"type": PROBLEM_NOT_FOUND_TYPE, "title": "Not Found", "status": 404, "detail": detail,
            "traceId": new_trace_id()}
    return json_response(body, 404, media_type="application/problem+json; charset=utf-8")


def apim_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Azure API Management gateway error body ``{statusCode, message}`` (API.md §2, §4 [APIM])."""
    return json_response({"statusCode": status, "message": message}, status, headers)


def apim_error_body(status: int, message: str) -> dict[str, Any]:
    """The same body as a dict, for the shared fault middleware's injected responses."""
    return {"statusCode": status, "message": message}


def pascal(name: str) -> str:
    """camelCase wire name -> the PascalCase property name ASP.NET uses as ``errors`` key."""
    return name[:1].upper() + name[1:] if name else name


def now_utc() -> datetime:
    return datetime.now(UTC)
