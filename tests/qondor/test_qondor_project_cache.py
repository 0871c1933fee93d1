"""The worker's project cache against the emulator: what it asks Qondor (the request log) and what it answers.

Each test names the moment the caller needs the project to be at least as new as (``fresh_after``), as the load
step does with its scheduling time; the emulator's seeds are Qondor's edits (they move ``settingsLastEditedDate``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from clients.qondor import QondorClient
from clients.qondor_projects import CLOCK_MARGIN, ProjectCache
from emulators.qondor import DEFAULT_SUBSCRIPTION_KEY, QondorState, RateLimitConfig, create_app
from emulators.qondor.sample import project_manager, sample_office_data

from .conftest import BASE_URL

OFFICE = 2
KICKOFF, PARTNER, CONFERENCE = OFFICE * 1000 + 301, OFFICE * 1000 + 302, OFFICE * 1000 + 303
BY_NO, GET_ALL = "/Project/v1/Project/GetByProjectNo", "/Project/v1/Project/GetAll"


def project_no(state: QondorState, project_id: int) -> str:
    return state.project(project_id)["projectNo"]


def calls(state: QondorState, route: str) -> int:
    return state.count("GET", route)


def edit(state: QondorState, project_id: int, **fields: object) -> None:
    """An edit in Qondor: the sample project re-seeded with ``fields`` changed."""
    doc = next(p for p in sample_office_data(OFFICE)["projects"] if p["id"] == project_id)
    state.seed({"projects": [{**doc, **fields}]})


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_repeat_is_served_after_one_change_check_shared_by_every_caller_waiting_for_it(
        state: QondorState, qondor: QondorClient) -> None:
    cache = ProjectCache()
    number = project_no(state, KICKOFF)
    assert (await cache.project(qondor, OFFICE, number, now())).id == KICKOFF
    assert (calls(state, BY_NO), calls(state, GET_ALL)) == (1, 0)

    asked = now()  # ten invoices of one poll, all scheduled before the check starts
    found = await asyncio.gather(*(cache.project(qondor, OFFICE, number, asked) for _ in range(10)))

    assert {p.id for p in found} == {KICKOFF}
    assert (calls(state, BY_NO), calls(state, GET_ALL)) == (1, 1)


async def test_an_edit_in_qondor_reaches_the_next_caller(state: QondorState, qondor: QondorClient) -> None:
    cache = ProjectCache()
    number = project_no(state, KICKOFF)
    await cache.project(qondor, OFFICE, number, now())
    edit(state, KICKOFF, name="Havblikk kick-off (flyttet)",
         projectManagers=[project_manager(OFFICE * 1000 + 299, "Nora", "Vik", OFFICE, main=True)])

    project = await cache.project(qondor, OFFICE, number, now())

    assert project is not None and project.name == "Havblikk kick-off (flyttet)"
    assert project.main_project_manager is not None and project.main_project_manager.email.startswith("nora.vik@")
    assert (calls(state, BY_NO), calls(state, GET_ALL)) == (2, 1)
    # Another project of the office, unchanged, stays cached through the same feed.
    other = project_no(state, PARTNER)
    await cache.project(qondor, OFFICE, other, now())
    await cache.project(qondor, OFFICE, other, now())
    assert calls(state, BY_NO) == 3


class AfterTheListing(httpx.ASGITransport):
    """The emulator, with ``then`` run once a ``Project/GetAll`` answer is computed (before it reaches us), and
    that answer replaced by ``status`` when one is given."""

    def __init__(self, state: QondorState, then: Callable[[], None] = lambda: None, status: int | None = None) -> None:
        super().__init__(app=create_app(state))
        self.then, self.status = then, status

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path.endswith("/Project/GetAll"):
            self.then()
            self.then = lambda: None
            if self.status is not None:
                return httpx.Response(self.status, json={"statusCode": self.status, "message": "down"})
        return response


async def test_an_edit_made_while_a_check_runs_is_listed_by_the_next_check(state: QondorState) -> None:
    """The check's listing is computed, then the PM saves, then the answer reaches us: the check vouched for the
    project only as of its start, so a caller who needs a later state gets the next check, which lists it."""
    transport = AfterTheListing(state, then=lambda: edit(state, KICKOFF, name="Renamed during the check"))
    async with QondorClient(BASE_URL, DEFAULT_SUBSCRIPTION_KEY, transport=transport) as qondor:
        cache = ProjectCache()
        number = project_no(state, KICKOFF)
        await cache.project(qondor, OFFICE, number, now())
        before_the_edit = now()
        assert (await cache.project(qondor, OFFICE, number, before_the_edit)).name == "Havblikk kick-off 2026"

        later = await cache.project(qondor, OFFICE, number, now())

    assert later.name == "Renamed during the check"
    assert (calls(state, BY_NO), calls(state, GET_ALL)) == (2, 2)


@pytest.mark.parametrize("margin_holds", [True, False])
async def test_the_clock_margin_covers_a_qondor_clock_behind_ours(margin_holds: bool) -> None:
    """Qondor stamps edits with a clock behind ours: an edit made after our read carries a stamp before it. The
    check reaches back CLOCK_MARGIN, so a skew within it is harmless; one beyond it would lose the edit (the
    second case shows the test can tell)."""
    skew = CLOCK_MARGIN / 2 if margin_holds else CLOCK_MARGIN * 2
    state = QondorState(rate_limit=RateLimitConfig(enabled=False), clock=lambda: datetime.now(UTC) - skew)
    state.seed(sample_office_data(OFFICE))
    async with QondorClient(BASE_URL, DEFAULT_SUBSCRIPTION_KEY,
                            transport=httpx.ASGITransport(app=create_app(state))) as qondor:
        cache = ProjectCache()
        number = project_no(state, KICKOFF)
        await cache.project(qondor, OFFICE, number, now())
        await asyncio.sleep(0.01)
        edit(state, KICKOFF, name="Edited under a slow clock")

        project = await cache.project(qondor, OFFICE, number, now())

    assert (project.name == "Edited under a slow clock") is margin_holds


async def test_fresh_reads_whatever_is_cached_and_refreshes_the_cache(state: QondorState, qondor: QondorClient) -> None:
    """An edit the change feed cannot show (the stored record changed without a new stamp, as a PM's own profile
    edit would): only a fresh read (a resync) sees it, and later callers get what it read."""
    cache = ProjectCache()
    number = project_no(state, KICKOFF)
    await cache.project(qondor, OFFICE, number, now())
    with state._lock:
        state.projects[KICKOFF]["projectManagers"][0]["email"] = "ingrid.berg@new-domain.example"

    assert (await cache.project(qondor, OFFICE, number, now())).main_project_manager.email != (
        "ingrid.berg@new-domain.example"), "the feed cannot show it (else this test proves nothing)"
    fresh = await cache.project(qondor, OFFICE, number, None)
    again = await cache.project(qondor, OFFICE, number, now())

    assert fresh.main_project_manager.email == again.main_project_manager.email == "ingrid.berg@new-domain.example"
    assert calls(state, BY_NO) == 2


async def test_a_failed_change_check_reads_the_project_instead(state: QondorState) -> None:
    async with QondorClient(BASE_URL, DEFAULT_SUBSCRIPTION_KEY, transport=AfterTheListing(state, status=500)) as qondor:
        cache = ProjectCache()
        number = project_no(state, KICKOFF)
        await cache.project(qondor, OFFICE, number, now())
        edit(state, KICKOFF, name="Renamed")

        project = await cache.project(qondor, OFFICE, number, now())

    assert project.name == "Renamed"
    assert (calls(state, BY_NO), calls(state, GET_ALL)) == (2, 1)


async def test_the_cache_is_bounded_least_recently_used_first(state: QondorState, qondor: QondorClient) -> None:
    cache = ProjectCache(capacity=2)
    kickoff, partner, conference = (project_no(state, p) for p in (KICKOFF, PARTNER, CONFERENCE))
    for number in (kickoff, partner, kickoff, conference):  # partner is the least recently used when full
        await cache.project(qondor, OFFICE, number, datetime.min.replace(tzinfo=UTC))
    assert calls(state, BY_NO) == 3

    await cache.project(qondor, OFFICE, kickoff, datetime.min.replace(tzinfo=UTC))
    await cache.project(qondor, OFFICE, partner, datetime.min.replace(tzinfo=UTC))

    assert calls(state, BY_NO) == 4


async def test_a_cached_project_is_read_again_after_its_maximum_age(state: QondorState, qondor: QondorClient) -> None:
    clock = [now()]
    cache = ProjectCache(clock=lambda: clock[0])
    number = project_no(state, KICKOFF)
    await cache.project(qondor, OFFICE, number, clock[0])
    clock[0] += timedelta(minutes=16)

    await cache.project(qondor, OFFICE, number, clock[0] - timedelta(minutes=1))

    assert (calls(state, BY_NO), calls(state, GET_ALL)) == (2, 0)
