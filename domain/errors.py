"""The three error classes every step of a sync is sorted into.

The class decides the outcome, so it must be chosen where the cause is known (a client, a mapping rule),
never guessed later from message text:

* ``TransientError`` (and anything unexpected): retried with backoff, never fails an invoice.
* ``DataError``: the project manager must fix data in Qondor; the queue item is set Failed (final).
* ``ConfigurationError``: an operator must fix settings or the accounting system; the workflow waits
  in "needs attention" and continues after a resync.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of the classified errors. ``message`` is written for the person who must act on it."""

    error_type: str = "SyncError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientError(SyncError):
    """Network faults, timeouts, 5xx, 429, expired sessions: retry, never fail the invoice."""

    error_type = "TransientError"

    def __init__(self, message: str, retry_after: float | None = None, *, expected: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.expected = expected
        """An expected wait (e.g. a credit note waiting for its original): retried without alarm in logs."""


class DataError(SyncError):
    """Data a project manager must fix in Qondor (names the invoice, the field and the fix)."""

    error_type = "QondorDataError"


class ConfigurationError(SyncError):
    """Settings an operator must fix (article mapping, payment type, VAT type, credentials)."""

    error_type = "ConfigurationError"


class CredentialsRefused(Exception):
    """Mixed into each client's "credentials refused" error: an operator must fix the office's secret.

    Lets the activity plumbing classify every system's refusal the same way without naming the systems.
    """


class RequestRefused(Exception):
    """Mixed into each client's "request refused" (validation) error. A step that knows whose data it was
    classifies it; otherwise an operator looks (configuration error)."""
