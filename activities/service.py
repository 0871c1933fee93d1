"""Service activities on the workflow queue: Slack alerts and final bookkeeping in the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity

from activities.common import AsyncStore, OfficeClients, activities_of
from clients.slack import SlackNotifier
from domain.sync import NotifyRequest, OutcomeRequest, Step, SyncState

_FINAL_TRACKING_STATE = {SyncState.PAID: "paid", SyncState.CREDITED: "credited"}


@dataclass
class ServiceActivities:
    clients: OfficeClients
    store: AsyncStore
    _notifiers: dict[int, SlackNotifier] = field(default_factory=dict)

    @activity.defn(name=Step.NOTIFY.value)
    async def notify(self, request: NotifyRequest) -> bool:
        """Alert the office's Slack target; off when none is configured. Never fails the workflow."""
        notifier = self._notifiers.get(request.office_id)
        if notifier is None:
            notifier = SlackNotifier(self.clients.office(request.office_id).slack)
            self._notifiers[request.office_id] = notifier
        office = self.clients.office(request.office_id)
        fields = {"Office": f"{office.id} ({office.name})", **request.fields}
        return await notifier.send(request.text, title=request.title, fields=fields)

    @activity.defn(name=Step.RECORD_OUTCOME.value)
    async def record_outcome(self, request: OutcomeRequest) -> None:
        """Close the invoice's payment tracking so later sweeps no longer list it."""
        system = request.system.value
        if await self.store.tracked_invoice(request.office_id, system, request.invoice_id) is None:
            return  # settled at creation (card payments): never tracked
        state = _FINAL_TRACKING_STATE.get(request.state, "closed")
        await self.store.set_invoice_state(request.office_id, system, request.invoice_id, state)

    def all(self) -> list:
        return activities_of(self)
