"""The step an activity reports rides in its heartbeats: the keep-alive beat of ``classified`` sends and repeats it.

Why it matters: ``accounting.ensure_parties`` reports the step it is on (customer, contact, project manager,
project) as its heartbeat detail, which the Temporal UI shows under pending activities. Before, the keep-alive beat
sent every HEARTBEAT_SECONDS carried no details, so a step that ran longer than that (a slow accounting API) showed
an empty detail while the operator looked at it.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.testing import ActivityEnvironment

from activities import common
from activities.common import classified, report_progress


@pytest.fixture
def beating(monkeypatch: pytest.MonkeyPatch) -> tuple[ActivityEnvironment, list[tuple]]:
    """An activity environment whose heartbeats (every 10 ms) are recorded, with the details of each."""
    monkeypatch.setattr(common, "HEARTBEAT_SECONDS", 0.01)
    beats: list[tuple] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


async def test_keep_alive_beats_repeat_the_reported_step(beating: tuple[ActivityEnvironment, list[tuple]]) -> None:
    env, beats = beating

    async def body() -> None:
        async with classified():
            await asyncio.sleep(0.05)  # keep-alive beats before any report: no details
            reported = len(beats)
            report_progress("accounting.ensure_project")
            assert len(beats) == reported, "the report waits for the next keep-alive beat (a server write each)"
            await asyncio.sleep(0.1)
            assert len(beats) > reported + 2, "keep-alive beats went on after the report"

    await env.run(body)
    before = beats[: beats.index(("accounting.ensure_project",))]
    after = beats[beats.index(("accounting.ensure_project",)):]
    assert before and all(b == () for b in before)
    assert all(b == ("accounting.ensure_project",) for b in after)


async def test_a_new_activity_body_starts_without_the_last_ones_details(
    beating: tuple[ActivityEnvironment, list[tuple]],
) -> None:
    env, beats = beating

    async def first() -> None:
        async with classified():
            report_progress("accounting.validate")

    async def second() -> None:
        async with classified():
            await asyncio.sleep(0.05)

    await env.run(first)
    beats.clear()
    await env.run(second)
    assert beats and all(b == () for b in beats)
