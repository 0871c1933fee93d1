"""Qondor projects read once per worker process and kept only while Qondor's change feed vouches for them.

Why: a repeat invoice re-read its project (``Project/GetByProjectNo``) every time, one Qondor call in four; the
key's 10 calls/s then capped an office below 3 invoices/s. Why not a plain TTL: a change made in Qondor must
reach the accounting system on the next invoice that uses the project (issue 11), not some minutes later.

How (docs/qondor-invoice-api.md §9a): a cached project may serve a caller only when a change check,
``Project/GetAll?officeId=..&changedAfter=..``, that *started at or after* the caller's ``fresh_after`` has
run and did not list the project. The caller's ``fresh_after`` is a moment after which any change that must be
seen had happened (the load activity passes when it was scheduled: after the queue item existed, so after any
edit the PM made before invoicing). One check per office is in flight at a time and every caller that it
satisfies shares it, so the invoices of one poll share one or a few checks instead of a read each.

The feed per office is followed without gaps: each check asks from the previous check's start (minus
:data:`CLOCK_MARGIN`, for the skew between our clock and Qondor's and a save committed after its timestamp), so
an edit made while a check runs is listed by the next one. A project listed is dropped and read again by the
next caller; nothing else is trusted from the listing. Free of Temporal, like the client it wraps.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clients.qondor import QondorClient, QondorError
from domain.qondor import Project

log = logging.getLogger(__name__)

CLOCK_MARGIN = timedelta(minutes=2)
"""How far each change check reaches back before the previous one started: covers the skew between our clock and
the one that stamps ``settingsLastEditedDate``, and a save committed a little after its stamp. A project edited
within this margin is listed (so read again) by every check until the margin has passed: cheap."""
MAX_AGE = timedelta(minutes=15)
"""A cached project is read again after this long whatever the feed says: it bounds what the feed cannot see (a
project manager's own name or e-mail edited in their user profile, which is not an edit of the project) and,
with it, the window of an office's first check after a quiet spell."""
CHECK_GATHER_SECONDS = 0.05
"""A change check starts this long after the first caller asks for it, so more of the loads of one poll (started
one by one, tens of milliseconds apart) are scheduled before it starts and share it (6 repeat invoices of one poll
on the in-process emulator: 3 checks without the pause, 1 or 2 with it). Less than the project read it saves."""
CAPACITY = 2_000
"""Projects kept per worker process (least recently used dropped first): about 2 MB."""


@dataclass
class _Entry:
    project: Project
    read_at: datetime


@dataclass
class _Feed:
    """One office's change feed. ``since``: every cached project of the office reflects Qondor as of this moment
    or later (it was read then or after, or a check that started then found it unchanged); the next check asks
    from here. None: nothing cached for the office yet."""

    since: datetime | None = None
    check: asyncio.Task[None] | None = None


@dataclass
class ProjectCache:
    capacity: int = CAPACITY
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _entries: OrderedDict[tuple[int, str], _Entry] = field(default_factory=OrderedDict)
    _feeds: dict[int, _Feed] = field(default_factory=dict)

    async def project(self, client: QondorClient, office_id: int, project_no: str,
                      fresh_after: datetime | None) -> Project | None:
        """The office's project with this number as Qondor held it at ``fresh_after`` or later (None: unknown).

        ``fresh_after=None`` reads Qondor whatever is cached (a resync: the operator changed something). A project
        read is cached for the next callers. A failed change check is no reason to fail the caller: it reads.
        """
        key = (office_id, project_no)
        feed = self._feeds.setdefault(office_id, _Feed())
        if fresh_after is not None:
            fresh_after = min(fresh_after, self.clock())  # a clock behind the caller's must not check for ever
            while (entry := self._current(key)) is not None:
                if max(entry.read_at, feed.since or entry.read_at) >= fresh_after:
                    self._entries.move_to_end(key)
                    return entry.project
                try:
                    await self._checked_since(client, office_id, feed, fresh_after)
                except QondorError as exc:
                    log.warning("office %s: Qondor's project change check failed (%s); reading project %s instead",
                                office_id, exc, project_no)
                    break
        return await self._read(client, office_id, project_no, feed)

    def _current(self, key: tuple[int, str]) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and self.clock() - entry.read_at > MAX_AGE:
            del self._entries[key]
            return None
        return entry

    async def _checked_since(self, client: QondorClient, office_id: int, feed: _Feed, fresh_after: datetime) -> None:
        """Return once a change check that started at or after ``fresh_after`` has been applied (one in flight
        per office: a caller joins it, or waits for it to end and starts the next)."""
        while feed.since is not None and feed.since < fresh_after:
            if feed.check is None:
                feed.check = asyncio.create_task(self._check(client, office_id, feed, feed.since))
            await asyncio.shield(feed.check)

    async def _check(self, client: QondorClient, office_id: int, feed: _Feed, since: datetime) -> None:
        try:
            await asyncio.sleep(CHECK_GATHER_SECONDS)
            started = self.clock()
            changed = await client.get_projects(office_id=office_id, changed_after=since - CLOCK_MARGIN,
                                                include_project_managers=False)
            ids = {p.id for p in changed}
            numbers = {p.project_no for p in changed if p.project_no}
            self._drop(lambda key, entry: key[0] == office_id and (entry.project.id in ids or key[1] in numbers))
            feed.since = started
        finally:
            feed.check = None

    async def _read(self, client: QondorClient, office_id: int, project_no: str, feed: _Feed) -> Project | None:
        read_at = self.clock()
        if feed.check is None and (feed.since is None or read_at - feed.since > MAX_AGE):
            # Restart the office's feed here rather than ask for everything edited since a long quiet spell.
            self._drop(lambda key, _: key[0] == office_id)
            feed.since = read_at
        project = await client.get_project_by_no(project_no, office_id)
        # A read that started before the feed's position may predate an edit a check already listed: not kept.
        if project is not None and feed.since is not None and read_at >= feed.since:
            self._entries[(office_id, project_no)] = _Entry(project, read_at)
            self._entries.move_to_end((office_id, project_no))
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return project

    def _drop(self, matches: Callable[[tuple[int, str], _Entry], bool]) -> None:
        for key in [k for k, e in self._entries.items() if matches(k, e)]:
            del self._entries[key]
