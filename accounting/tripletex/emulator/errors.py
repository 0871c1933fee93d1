"""Tripletex's error envelope, raised anywhere in the emulator and rendered by one exception handler.

Codes follow the spec's "Status codes / Error codes" table. Messages are English ("Validation failed."),
like an English-language account; callers must match on status/code/field, never on text, exactly as
with the real API whose messages follow the token owner's language.
"""

from __future__ import annotations

from typing import Any

LINK = "https://tripletex.no/v2-docs/"

DEVELOPER_MESSAGES: dict[int, str] = {
    1000: "UNEXPECTED_ERROR",
    3000: "AUTHENTICATION_ERROR",
    4000: "BAD_REQUEST",
    6000: "NOT_FOUND",
    8000: "REVISION_ERROR",
    9000: "SECURITY_ERROR",
    11000: "ILLEGAL_FILTER",
    15000: "VALUE_VALIDATION_ERROR",
    16000: "MAPPING_ERROR",
    17000: "SORTING_ERROR",
    18000: "VALIDATION_ERROR",
    21000: "PARAM_ERROR",
    22000: "INVALID_JSON",
}


class ApiError(Exception):
    """An error response: ``status`` (HTTP), ``code`` (Tripletex's internal code) and validation messages."""

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        *,
        developer_message: str | None = None,
        validation_messages: list[tuple[str | None, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.developer_message = developer_message or DEVELOPER_MESSAGES.get(code or 0)
        self.validation_messages = validation_messages
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The documented envelope (``path``/``rootId`` as real responses carry them)."""
        messages = None
        if self.validation_messages is not None:
            messages = [{"field": f, "message": m, "path": None, "rootId": None} for f, m in self.validation_messages]
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "link": LINK,
            "developerMessage": self.developer_message,
            "validationMessages": messages,
            "requestId": request_id,
        }


def validation(field: str | None, message: str, code: int = 18000) -> ApiError:
    """422 with one validation message (code 18000 unless told otherwise)."""
    return ApiError(422, code, "Validation failed.", validation_messages=[(field, message)])


def unknown_property(field: str, schema: str) -> ApiError:
    """What Tripletex answers to a body field its model does not have (16000, "Feltet eksisterer ikke")."""
    return ApiError(
        422, 16000, "Validation failed.",
        developer_message=f"Unrecognized field \"{field.rsplit('.', 1)[-1]}\" (class {schema}DTO)",
        validation_messages=[(field, "The field does not exist in the object.")],
    )


def missing_param(name: str) -> ApiError:
    """A required query parameter is absent (e.g. invoiceDateFrom on GET /invoice)."""
    return ApiError(422, 15000, "Validation failed.", validation_messages=[(name, "Cannot be null.")])


def bad_param(name: str, value: str) -> ApiError:
    """A query parameter that does not parse as its declared type."""
    return ApiError(422, 21000, "Validation failed.", validation_messages=[(name, f"Invalid value: {value!r}.")])


def not_found(what: str = "Object") -> ApiError:
    return ApiError(404, 6000, f"{what} not found.")


def unauthorized() -> ApiError:
    return ApiError(401, 3000, "Unauthorized: the session token is missing, invalid or expired.")
