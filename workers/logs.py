"""Logging of every ``qondor-sync`` command: quiet libraries, and a JSON format for production.

* Level: INFO, or DEBUG with ``--verbose``; ``QONDOR_SYNC_LOG_LEVEL`` (``DEBUG``, ``WARNING`` ...) overrides.
* Library noise (Alembic's migration chatter, httpx's line per request, zeep, the SDK's per-activity and
  per-workflow loggers) is held at WARNING unless the level is DEBUG: a command prints what an operator needs,
  the worker one line per invoice event (``qondor_sync.events``: synced, failed, needs attention, paid, credited).
* ``QONDOR_SYNC_LOG_FORMAT=json``: one JSON object per line, with ``time``, ``level``, ``logger``, ``message`` and
  the record's structured fields (``office_id``, ``invoice_id``, ``workflow_id``, ``run_id``, ``event``,
  ``activity_type`` ...), which log shippers index without parsing text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LEVEL_ENV = "QONDOR_SYNC_LOG_LEVEL"
FORMAT_ENV = "QONDOR_SYNC_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

NOISY = ("alembic", "httpx", "httpcore", "zeep", "temporalio.activity", "temporalio.workflow", "uvicorn.access")
"""Loggers held at WARNING unless the level is DEBUG."""

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_TEMPORAL_CONTEXT = ("temporal_workflow", "temporal_activity")
"""Dicts the SDK's workflow and activity loggers put on a record (workflow_id, run_id, activity_type ...)."""


def configure(verbose: bool = False, stream: TextIO | None = None) -> None:
    """Set up the root logger once per process, from ``verbose`` and the environment."""
    level_name = os.environ.get(LEVEL_ENV, "").strip().upper()
    level = logging.getLevelNamesMapping().get(level_name) if level_name else None
    if level is None:
        level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(stream or sys.stderr)
    if os.environ.get(FORMAT_ENV, "").strip().lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY:
        # DEBUG shows everything; otherwise libraries speak only when something is wrong.
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else max(level, logging.WARNING))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, then the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _RECORD_FIELDS or key.startswith("_"):
                continue
            if key in _TEMPORAL_CONTEXT and isinstance(value, dict):
                for inner, inner_value in value.items():
                    out.setdefault(inner, _plain(inner_value))
                continue
            out.setdefault(key, _plain(value))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None) | list | dict) else str(value)
