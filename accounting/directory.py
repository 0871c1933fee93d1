"""The customer and project sync ("directory"): Qondor's customers and projects kept current in the accounting
system, a page at a time, as activities on the system's task queue.

Every record goes through the engine's ``ensure`` (link -> lock -> re-check -> intent -> find, else create ->
link -> finish -> refresh when changed -> audit) with the party its adapter builds by the same matching rules
as the invoice sync (``directory_customer`` / ``directory_project``). What is added here is only what a
scheduled bulk run needs:

* **Own fingerprints.** The scheduled sync writes fewer fields than an invoice does (Qondor's lists carry no
  address, and a project's status and category are its own), so its links are kept under their own kinds
  (``customer.directory``, ``project.directory``). Sharing the invoice sync's link would make the two flows
  rewrite each other's fingerprint, and each would write again after the other. The invoice sync's link is
  still the first place a party is found, and the invoice sync's lock is held while one is created, so the
  two flows never make two of anything.
* **Only confirmed projects are created**; a pending (or closed) project is refreshed when it is linked
  already, otherwise skipped and counted.
* **Failures are per record**: a data or configuration error is counted and reported, and the page goes on;
  only a transient error (network, 429, quarantine) fails the attempt, which Temporal retries and which
  resumes after the last record done (heartbeat details), so counts and alerts are not repeated.
* **Reads**: Qondor's customer list and the changed projects are read once per run (kept in memory for the
  run's pages; another worker reads them again) through the office's Qondor client, which paces itself under
  Qondor's limit. Reading them here rather than in a Qondor-queue activity keeps the lists out of workflow
  histories: the workflow passes only a cursor and counts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity

from accounting.adapter import AccountingAdapter, Match, Party, Skipped
from accounting.engine import AccountingActivities, is_complete
from activities.common import OfficeClients, activities_of, application_error, audit
from domain.config import OfficeConfig
from domain.errors import ConfigurationError, CredentialsRefused, DataError, SyncError, TransientError
from domain.qondor import Customer, Project, ProjectStatus
from domain.rules import fingerprint, normalise_org_number
from domain.sync import (
    AccountingRefs,
    DirectoryFailure,
    DirectoryPage,
    DirectoryPageRequest,
    DirectoryResult,
    Step,
    StepResult,
)

log = logging.getLogger(__name__)

OWN_KIND = "{kind}.directory"
"""The link kind of a party written by this sync (its own fingerprint), beside the invoice sync's ``{kind}``."""
SNAPSHOT_TTL_SECONDS = 900.0
"""How long one run's reading of Qondor is kept for its later pages."""
NEXT_RUN = "the next customer and project sync picks it up (or run `qondor-sync directory --now`)"
R = TypeVar("R", Customer, Project)


@dataclass
class DirectoryActivities:
    """The sync's activities for one accounting system, on top of that system's engine."""

    engine: AccountingActivities
    _snapshots: dict[tuple[int, str, str], tuple[float, list[Any]]] = field(default_factory=dict)

    @property
    def adapter(self) -> AccountingAdapter:
        return self.engine.adapter

    @property
    def clients(self) -> OfficeClients:
        return self.engine.clients

    @property
    def system(self) -> str:
        return self.engine.system

    # --- activities ------------------------------------------------------------------------------

    @activity.defn(name=Step.DIRECTORY_CUSTOMERS.value)
    async def customers(self, request: DirectoryPageRequest) -> DirectoryPage:
        """One page of the office's customers (by Qondor id), created or updated in the accounting system."""
        async with _whole_page():
            office = self.clients.office(request.office_id)
            if not office.syncs_customers:
                return DirectoryPage(note="customers: not synced for this office (customer_sync is off)")
            customers = await self._customers(request)
            page = await self._page(request, "customer", customers, lambda c, page: self._customer(office, c, request))
            return page

    @activity.defn(name=Step.DIRECTORY_PROJECTS.value)
    async def projects(self, request: DirectoryPageRequest) -> DirectoryPage:
        """One page of the projects changed within ``projects_changed_days`` (all of them on a full run)."""
        async with _whole_page():
            office = self.clients.office(request.office_id)
            projects = await self._projects(request, office)
            return await self._page(
                request, "project", projects, lambda p, page: self._project(office, p, request, page)
            )

    @activity.defn(name=Step.DIRECTORY_REPORT.value)
    async def report(self, result: DirectoryResult) -> None:
        """The run's counts in the audit trail (``qondor-sync audit``)."""
        await audit(
            self.engine.store,
            office_id=result.office_id,
            system=self.system,
            action="directory-run",
            entity="office",
            accounting_id=None,
            qondor_key=f"office:{result.office_id}",
            detail=result.model_dump(mode="json"),
        )

    def all(self) -> list:
        return activities_of(self)

    # --- one page --------------------------------------------------------------------------------

    async def _page(
        self,
        request: DirectoryPageRequest,
        kind: str,
        rows: list[R],
        handle: Callable[[R, DirectoryPage], Awaitable[StepResult]],
    ) -> DirectoryPage:
        """Work the rows after ``request.after``, up to ``request.limit``; resume after a crashed attempt."""
        pending = [r for r in rows if request.after is None or r.id > request.after]
        page = _resumed() or DirectoryPage(after=request.after)
        page.total = len(rows)
        failing = await self._failing(request.office_id)
        before = dict(failing)
        for row in pending[: request.limit]:
            if page.after is not None and row.id <= page.after:
                continue  # done by the attempt this one resumes
            key = f"{kind}:{row.id}"
            try:
                done = await handle(row, page)
                page.counts.count(done.action, done.detail)
                failing.pop(key, None)
            except (TransientError, CredentialsRefused):
                raise
            except Exception as exc:  # one record's problem never stops the run
                message = exc.message if isinstance(exc, SyncError) else f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, SyncError):
                    log.exception("customer and project sync: %s failed", key)
                page.counts.failed += 1
                digest = fingerprint({"message": message})
                if failing.get(key) != digest:
                    page.failures.append(DirectoryFailure(kind=kind, qondor_id=row.id, message=message))
                    failing[key] = digest
            page.after = row.id
            activity.heartbeat(page.model_dump(mode="json"))
        page.done = len(pending) <= request.limit
        for failure in page.failures:  # from the attempt this one resumes, too
            failing[f"{failure.kind}:{failure.qondor_id}"] = fingerprint({"message": failure.message})
        if failing != before:
            await self.engine.store.set_cursor(request.office_id, self._failing_cursor, json.dumps(failing))
        return page

    @property
    def _failing_cursor(self) -> str:
        return f"directory.failing.{self.system}"

    async def _failing(self, office_id: int) -> dict[str, str]:
        """The records failing at the last run, with the fingerprint of their message: a failure already
        reported is counted again but not reported again until its message changes."""
        raw = await self.engine.store.get_cursor(office_id, self._failing_cursor)
        return json.loads(raw) if raw else {}

    # --- customers -------------------------------------------------------------------------------

    async def _customer(self, office: OfficeConfig, customer: Customer, request: DirectoryPageRequest) -> StepResult:
        if customer.is_active is False:
            return StepResult(action="skipped", detail="inactive")
        await self._check_unique_org(office, customer, request)
        return await self._ensure(office.id, self.adapter.directory_customer(office.id, customer))

    async def _check_unique_org(self, office: OfficeConfig, customer: Customer, request: DirectoryPageRequest) -> None:
        """Two Qondor customers with one organisation number cannot be told apart in the accounting system: each is
        reported, neither is written (never a guess)."""
        org = normalise_org_number(customer.organisation_number)
        if not org:
            return
        sharing = [c.id for c in await self._customers(request) if normalise_org_number(c.organisation_number) == org]
        if len(sharing) > 1:
            raise DataError(
                f"Customer '{customer.name}' (Qondor id {customer.id}): organisation number {org} is shared by the "
                f"Qondor customers {', '.join(str(i) for i in sharing)} of office {office.id}, so it cannot be "
                f"matched in {self.adapter.label}. Merge the customers in Qondor or correct the organisation number; "
                f"{NEXT_RUN}."
            )

    async def _customer_id(self, office: OfficeConfig, customer_id: int, request: DirectoryPageRequest,
                           page: DirectoryPage) -> str:
        """The accounting id of a project's customer: linked by either flow, else synced now (a project is
        created with its customer, also where customers are not synced on their own)."""
        for kind in (OWN_KIND.format(kind="customer"), "customer"):
            link = await self.engine.store.get_link(office.id, self.system, kind, f"customer:{customer_id}")
            if is_complete(link):
                assert link is not None and link.accounting_id is not None
                return link.accounting_id
        customer = next((c for c in await self._customers(request) if c.id == customer_id), None)
        if customer is None:
            customer = await self.clients.qondor(office.id).get_customer(customer_id)
        try:
            await self._check_unique_org(office, customer, request)
            done = await self._ensure(office.id, self.adapter.directory_customer(office.id, customer))
        except (DataError, ConfigurationError) as exc:
            kind = DataError if isinstance(exc, DataError) else ConfigurationError
            raise kind(f"the project's customer: {exc.message}") from exc
        page.customers_on_demand.count(done.action, done.detail)
        assert done.accounting_id is not None
        return done.accounting_id

    # --- projects --------------------------------------------------------------------------------

    async def _project(
        self, office: OfficeConfig, project: Project, request: DirectoryPageRequest, page: DirectoryPage
    ) -> StepResult:
        probe = self.adapter.directory_project(office.id, project, AccountingRefs())
        if isinstance(probe, Skipped):
            return StepResult(action="skipped", detail=probe.reason)
        if project.status is not ProjectStatus.CONFIRMED and not await self._linked(office.id, probe):
            # The seed: only confirmed projects are created; a linked one is kept current whatever its status.
            status = project.status.name.lower() if project.status is not None else "no status"
            return StepResult(action="skipped", detail=status)
        refs = AccountingRefs()
        if project.customer_id is not None:
            refs.customer_id = await self._customer_id(office, project.customer_id, request, page)
        manager = self.adapter.directory_project_manager(office.id, project)
        if isinstance(manager, Party):
            refs.employee_id = (await self.engine.ensure(office.id, manager)).accounting_id
        return await self._ensure(office.id, self.adapter.directory_project(office.id, project, refs))

    # --- the engine, under this sync's own link kinds ------------------------------------------------

    async def _ensure(self, office_id: int, party: Party | Skipped) -> StepResult:
        """The engine's ensure for the party under this sync's link kind; the invoice sync's link is where it is
        found first, and the invoice sync's lock is held while it may be created."""
        if isinstance(party, Skipped):
            return StepResult(action="skipped", detail=party.reason)
        own = dataclasses.replace(party, kind=OWN_KIND.format(kind=party.kind), find=self._find(office_id, party))
        if is_complete(await self.engine.store.get_link(office_id, self.system, own.kind, own.key)):
            return await self.engine.ensure(office_id, own)
        async with self.engine.locks.hold(f"{office_id}:{self.system}:{party.kind}:{party.key}"):
            return await self.engine.ensure(office_id, own)

    def _find(self, office_id: int, party: Party) -> Callable[[], Awaitable[Match | None]]:
        async def find() -> Match | None:
            link = await self.engine.store.get_link(office_id, self.system, party.kind, party.key)
            if is_complete(link):
                assert link is not None and link.accounting_id is not None
                # Linked by the invoice sync: this sync's fields (status, category, ...) are written once.
                return Match(link.accounting_id, update=True)
            return await party.find() if party.find is not None else None

        return find

    async def _linked(self, office_id: int, party: Party) -> bool:
        for kind in (OWN_KIND.format(kind=party.kind), party.kind):
            if is_complete(await self.engine.store.get_link(office_id, self.system, kind, party.key)):
                return True
        return False

    # --- Qondor, read once per run ------------------------------------------------------------------

    async def _customers(self, request: DirectoryPageRequest) -> list[Customer]:
        async def read() -> list[Customer]:
            summaries = await self.clients.qondor(request.office_id).get_all_customers(request.office_id)
            return sorted((Customer.model_validate(s.model_dump()) for s in summaries), key=lambda c: c.id)

        return await self._snapshot(request, "customers", read)

    async def _projects(self, request: DirectoryPageRequest, office: OfficeConfig) -> list[Project]:
        since = None if request.full else request.started_at - timedelta(days=office.projects_changed_days)

        async def read() -> list[Project]:
            found = await self.clients.qondor(office.id).get_projects(office_id=office.id, changed_after=since)
            return sorted(found, key=lambda p: p.id)

        return await self._snapshot(request, "projects", read)

    async def _snapshot(
        self, request: DirectoryPageRequest, what: str, read: Callable[[], Awaitable[list[R]]]
    ) -> list[R]:
        now = time.monotonic()
        for key in [k for k, (at, _) in self._snapshots.items() if now - at > SNAPSHOT_TTL_SECONDS]:
            del self._snapshots[key]
        key = (request.office_id, request.snapshot, what)
        if key not in self._snapshots:
            self._snapshots[key] = (now, await read())
        return self._snapshots[key][1]


def _resumed() -> DirectoryPage | None:
    """The progress the previous attempt heartbeated (it crashed or was retried after a transient error)."""
    try:
        details = activity.info().heartbeat_details
    except RuntimeError:
        return None
    if not details:
        return None
    try:
        return DirectoryPage.model_validate(details[0])
    except ValueError:
        return None


class _whole_page:
    """Errors that stop the page: transient ones retry it (resuming after the last record done), refused
    credentials or a missing office are configuration errors for the run."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, SyncError):
            raise application_error(exc) from exc
        if isinstance(exc, CredentialsRefused):
            problem = ConfigurationError(f"the API refused the office's credentials ({exc}). Fix the secret.")
            raise application_error(problem) from exc
        return False
