"""The Slack alert text of the scheduled runs (workflows/alerts.py): one line per distinct message."""

from __future__ import annotations

from workflows.alerts import ALERT_LINES, SOURCES_SHOWN, grouped_lines


def test_items_sharing_a_message_are_one_line_naming_the_first_few() -> None:
    pairs = [("No Qondor project with number P-1", f"cost {n}") for n in range(SOURCES_SHOWN + 3)]
    pairs.append(("Amounts do not balance", "transaction 77"))
    assert grouped_lines(pairs).splitlines() == [
        "- No Qondor project with number P-1 (cost 0, cost 1, cost 2, cost 3, cost 4 and 3 more)",
        "- Amounts do not balance (transaction 77)",
    ]


def test_more_distinct_messages_than_an_alert_holds_are_counted() -> None:
    lines = grouped_lines((f"problem {n}", "item") for n in range(ALERT_LINES + 4)).splitlines()
    assert len(lines) == ALERT_LINES + 1
    assert lines[-1] == "... and 4 more problems"
