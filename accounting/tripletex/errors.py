"""Typed Tripletex errors, chosen from the HTTP status and Tripletex's error ``code`` — never from the
(localized) message text.

========================================  ======================================================
``TripletexValidationError``              400 / 422 (``validation_messages`` name the fields)
``TripletexNotFoundError``                404
``TripletexConflictError``                409 (``is_revision``: code 8000, a stale ``version``)
``TripletexAuthError``                    401 / 403, and rejected credentials at session creation
``TripletexRateLimitedError``  transient  429 after the client's own waiting budget is spent
``TripletexServerError``       transient  5xx
``TripletexTransportError``    transient  network errors, timeouts, responses lost mid-way
========================================  ======================================================

The transient ones also subclass ``domain.errors.TransientError``, so callers retry them with backoff. A
transient error on a write means "may or may not have happened": look up before creating again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import CredentialsRefused, RequestRefused, TransientError


@dataclass(frozen=True)
class ValidationMessage:
    """One entry of ``validationMessages``: the field Tripletex blames and its (localized) message."""

    field: str | None
    message: str | None


class TripletexError(Exception):
    """An error answer from Tripletex (or, for the transport error, no answer at all)."""

    def __init__(
        self,
        status: int | None,
        code: int | None,
        message: str,
        developer_message: str | None = None,
        validation_messages: list[ValidationMessage] | None = None,
        request_id: str | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.developer_message = developer_message
        self.validation_messages = list(validation_messages or [])
        self.request_id = request_id
        self.method = method
        self.path = path
        super().__init__(self._summary(message))
        self.message = message  # Tripletex's message (set after: SyncError.__init__ also sets ``message``)

    def _summary(self, message: str) -> str:
        where = f" on {self.method} {self.path}" if self.method else ""
        code = f" code {self.code}" if self.code is not None else ""
        text = f"Tripletex {self.status if self.status is not None else 'request'}{code}{where}: {message}"
        if self.validation_messages:
            text += " [" + "; ".join(f"{m.field}: {m.message}" for m in self.validation_messages) + "]"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def fields(self) -> list[str]:
        """The fields named by the validation messages."""
        return [m.field for m in self.validation_messages if m.field]


class TripletexValidationError(TripletexError, RequestRefused):
    """400/422: the request was understood and rejected; repeating it unchanged fails the same way."""


class TripletexNotFoundError(TripletexError):
    """404: the object (or endpoint) does not exist."""


class TripletexConflictError(TripletexError):
    """409: object exists, duplicate entry, locked, or a stale ``version`` (code 8000)."""

    @property
    def is_revision(self) -> bool:
        return self.code == 8000


class TripletexAuthError(TripletexError, CredentialsRefused):
    """401/403, or credentials rejected when creating the session token (an operator must fix them)."""


class TripletexRateLimitedError(TripletexError, TransientError):
    """429 beyond the client's waiting budget. ``retry_after``: X-Rate-Limit-Reset, else Retry-After, else None."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class TripletexServerError(TripletexError, TransientError):
    """5xx: Tripletex failed; a write may or may not have been applied."""


class TripletexTransportError(TripletexError, TransientError):
    """No (complete) response: connection failure, timeout, or a response lost after the request was sent."""


_BY_STATUS: dict[int, type[TripletexError]] = {
    400: TripletexValidationError, 422: TripletexValidationError, 404: TripletexNotFoundError,
    409: TripletexConflictError, 401: TripletexAuthError, 403: TripletexAuthError,
}


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait according to ``X-Rate-Limit-Reset``, else ``Retry-After`` (seconds), else None."""
    for name in ("x-rate-limit-reset", "retry-after"):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue  # an HTTP-date Retry-After: fall back to our own backoff
    return None


def error_from_response(status: int, body: Any, headers: Mapping[str, str], *, method: str,
                        path: str) -> TripletexError:
    """The typed error for an error response (body: the decoded JSON envelope, or anything else)."""
    envelope = body if isinstance(body, Mapping) else {}
    messages = [
        ValidationMessage(m.get("field"), m.get("message"))
        for m in envelope.get("validationMessages") or []
        if isinstance(m, Mapping)
    ]
    args: dict[str, Any] = {
        "status": status,
        "code": envelope.get("code"),
        "message": envelope.get("message") or f"HTTP {status}",
        "developer_message": envelope.get("developerMessage"),
        "validation_messages": messages,
        "request_id": envelope.get("requestId") or headers.get("x-tlx-request-id"),
        "method": method,
        "path": path,
    }
    if status == 429:
        return TripletexRateLimitedError(**args, retry_after=retry_after_seconds(headers))
    if status >= 500:
        return TripletexServerError(**args)
    return _BY_STATUS.get(status, TripletexError)(**args)
