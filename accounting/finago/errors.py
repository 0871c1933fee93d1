"""Typed 24SevenOffice errors, chosen from the channel and structure of the answer (HTTP status, SOAP fault
code, the per-item ``APIException.Type``) and never from localized message text where a structure exists.

==========================  =========  =============================================================
``FinagoTransportError``    transient  network errors, timeouts, HTTP 5xx without a SOAP fault
``FinagoRateLimitedError``  transient  the hourly quarantine fault or HTTP 429 (``retry_after`` seconds)
``FinagoSessionError``      transient  the session expired and re-login plus one retry did not help
``FinagoAuthError``                    Login refused the credentials (an operator must fix the secret)
``FinagoFault``                        any other SOAP fault (``code`` 'Client' | 'Server', ``inner``)
``FinagoItemError``                    a ``Save*`` item came back with an ``APIException``
==========================  =========  =============================================================

Only two SOAP faults have no structure to go by and are recognised from their (English, not localized)
text, as every public client does: the quarantine fault (``Limit exceeded by N. Request is blocked.
Quarantine ends at …``) and the expired-session faults (``Session is not authenticated``, ``Client is not
authenticated on this identity``). The transient ones also subclass ``domain.errors.TransientError``, so
callers retry them with backoff; a transient error on a ``Save*`` means "may or may not have happened".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from domain.errors import CredentialsRefused, RequestRefused, TransientError

FaultCode = Literal["Client", "Server"]

_QUARANTINE = re.compile(r"Limit exceeded by \d+\.\s*Request is blocked\.\s*Quarantine ends at\s*(?P<at>.+?)\s*\.?$",
                         re.IGNORECASE | re.DOTALL)
_SESSION_TEXTS = ("session is not authenticated", "client is not authenticated on this identity")
_AUTH_TEXTS = ("identityid is blocked",)


class FinagoError(Exception):
    """Any error talking to 24SevenOffice. ``operation``: the SOAP operation (e.g. ``SaveInvoices``)."""

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        self.operation = operation
        where = f" ({operation})" if operation else ""
        super().__init__(f"24SevenOffice{where}: {message}")
        self.message = message  # set after: SyncError.__init__ (via TransientError) also sets ``message``


class FinagoTransportError(FinagoError, TransientError):
    """No usable answer: connection failure, timeout, or an HTTP error status without a SOAP fault."""

    def __init__(self, message: str, *, status: int | None = None, operation: str | None = None) -> None:
        FinagoError.__init__(self, message, operation=operation)
        self.retry_after = None
        self.expected = False
        self.status = status


class FinagoRateLimitedError(FinagoError, TransientError):
    """The hourly quota is spent (quarantine fault) or HTTP 429. Nothing was processed; retry after
    ``retry_after`` seconds (None when the service named no time)."""

    def __init__(self, message: str, retry_after: float | None, *, operation: str | None = None) -> None:
        FinagoError.__init__(self, message, operation=operation)
        self.retry_after = retry_after
        self.expected = False


class FinagoSessionError(FinagoError, TransientError):
    """The session is not (or no longer) authenticated. The client handles it by logging in again and
    repeating the call once; it only escapes when that did not help."""

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        FinagoError.__init__(self, message, operation=operation)
        self.retry_after = None
        self.expected = False


class FinagoAuthError(FinagoError, CredentialsRefused):
    """Login refused (a fault, or an empty session id), or the identity is blocked: the application id,
    username, password or identity id in the office's secrets must be fixed by an operator."""


class FinagoFault(FinagoError, RequestRefused):
    """A SOAP fault. ``code``: 'Client' (the request could not be read, e.g. an invalid enum value) or
    'Server' (the service failed processing it); ``inner``: the innermost ``--->`` part of the faultstring,
    the message that actually says what is wrong; ``faultstring``: the whole text."""

    def __init__(self, code: FaultCode, inner: str, faultstring: str, *, operation: str | None = None) -> None:
        super().__init__(f"soap:{code} fault: {inner}", operation=operation)
        self.code: FaultCode = code
        self.inner = inner
        self.faultstring = faultstring


class FinagoItemError(FinagoError, RequestRefused):
    """One item of a ``Save*`` call came back with an ``APIException`` (HTTP 200). ``type``: the .NET
    exception type (e.g. ``Office24Seven.Library.Core.ParameterNotFoundException``), ``item``: the returned
    item as a dict (with whatever ids the service assigned)."""

    def __init__(self, type: str | None, message: str | None, item: Mapping[str, Any], *,
                 operation: str | None = None) -> None:
        super().__init__(f"{type or 'APIException'}: {message or ''}".rstrip(": "), operation=operation)
        self.type = type
        self.item_message = message
        self.item = dict(item)


# ------------------------------------------------------------------------------------------ classification


def fault_code(code: Any) -> FaultCode:
    """``soap:Client`` / ``{ns}Client`` / ``Client`` -> 'Client'; everything else (incl. SOAP 1.2
    ``Receiver``) -> 'Server'."""
    local = str(code or "").rsplit("}", 1)[-1].rsplit(":", 1)[-1]
    return "Client" if local in ("Client", "Sender") else "Server"


def inner_message(faultstring: str) -> str:
    """The innermost message of an ASMX faultstring (``… ---> … ---> <inner>``), stripped."""
    parts = [p.strip() for p in (faultstring or "").split("--->")]
    inner = next((p for p in reversed(parts) if p), "")
    return inner or (faultstring or "").strip()


def is_session_fault(faultstring: str) -> bool:
    text = (faultstring or "").casefold()
    return any(t in text for t in _SESSION_TEXTS)


def is_auth_fault(faultstring: str) -> bool:
    text = (faultstring or "").casefold()
    return any(t in text for t in _AUTH_TEXTS)


def quarantine_end(faultstring: str) -> datetime | Literal[False] | None:
    """False if this is not the quarantine fault; else the end it names (naive UTC), or None if unreadable."""
    match = _QUARANTINE.search(inner_message(faultstring))
    if match is None:
        return False
    return parse_timestamp(match.group("at"))


def parse_timestamp(text: str | None) -> datetime | None:
    """A reset/quarantine time as naive UTC: ISO 8601 (with or without ``Z``/offset) or .NET's invariant
    ``MM/dd/yyyy HH:mm:ss``; None when unreadable."""
    if not text:
        return None
    text = text.strip().rstrip(".")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in ("%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M"):
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def seconds_until(when: datetime | None, now: datetime) -> float | None:
    """Seconds from ``now`` (naive UTC) until ``when`` (naive UTC), never negative; None if unknown."""
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


def seconds_to_next_hour(now: datetime) -> float:
    """The documented fallback for a quarantine without a readable end: "wait for the next hour"."""
    return 3600.0 - (now.minute * 60 + now.second + now.microsecond / 1e6)
