"""Slack alerts and the run report of the scheduled runs (customer and project sync, cost and sales sync), written once.

A run reports each page's new failures in one message: items that share a message are grouped under it, and
at most ``ALERT_LINES`` distinct messages are listed (the rest are counted), so a page of a thousand failures
of one kind is one line, not a thousand. The alert is a NOTIFY activity on the workflow's own task queue (the
Slack activity lives beside the workflows).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

ALERT_LINES = 30
"""At most this many distinct messages in one Slack alert; the rest are counted."""
SOURCES_SHOWN = 5
"""At most this many items named after one message."""
PROBLEMS_KEPT = 20
"""At most this many distinct failure messages kept in a run's result (all of them went to Slack)."""


def keep_problems(problems: list[str], messages: Iterable[str]) -> None:
    """Add each message not kept yet to the run's ``problems``, up to PROBLEMS_KEPT."""
    for message in messages:
        if message not in problems and len(problems) < PROBLEMS_KEPT:
            problems.append(message)


def grouped_lines(failures: Iterable[tuple[str, str]]) -> str:
    """``(message, item)`` pairs as alert lines: each message once, with the items that have it."""
    by_message: dict[str, list[str]] = {}
    for message, item in failures:
        by_message.setdefault(message, []).append(item)
    lines = []
    for message, items in list(by_message.items())[:ALERT_LINES]:
        more = len(items) - SOURCES_SHOWN
        lines.append(f"- {message} ({', '.join(items[:SOURCES_SHOWN])}{f' and {more} more' if more > 0 else ''})")
    if len(by_message) > ALERT_LINES:
        lines.append(f"... and {len(by_message) - ALERT_LINES} more problems")
    return "\n".join(lines)


ALERT_OPTIONS: dict[str, Any] = {
    "result_type": bool,
    "start_to_close_timeout": timedelta(minutes=1),
    "retry_policy": RetryPolicy(maximum_attempts=3),  # an alert that cannot go out must not hold the run
    "summary": "Alert Slack",
}
"""Options of the NOTIFY activity. Each workflow calls ``workflow.execute_activity`` itself (in its own
``_notify``), so the fingerprint guard (tests/workflow_fingerprints.py) still sees the command in the workflow."""


REPORT_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=1),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10),
    "summary": "Record the run in the audit trail",
}
"""Options of a run's report activity (the audit trail entry with its counts); called by each workflow itself."""
