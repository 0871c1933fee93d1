"""The test probe of an accounting system ("the books"): the system-neutral questions the shared end-to-end,
fault, crash and contract suites ask, answered from the emulated system's state.

Why: the suites are written once and run for every registered system, so what differs between systems —
where a booked invoice is found, what Qondor is told about it, how finance invoices an order and records a
payment, which request creates what (to lose its response) — lives here, one class per system, and nowhere
in the suites. ``books_for(stack)`` picks the class from the stack's system.

* Tripletex: an invoice is found by its order's reference ``qondor-{office}-{id}``; Qondor holds its invoice
  number and its id; a credit note is an invoice crediting the original (it shares the original's order).
* 24SevenOffice: every queue item is one InvoiceOrder whose ReferenceNumber is the Qondor invoice id; Qondor
  holds its order id (and the invoice id once invoiced); a credit note is an order referencing the
  original's order; payments are customer-ledger entries linked to the invoice's open item.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounting.tripletex.emulator import PAYMENT_TYPE_CARD
from domain.config import AccountingSystem
from domain.qondor import QondorInvoice
from domain.rules import normalise_email, normalise_org_number
from emulators.faults import ResponseDropped, soap_action

if TYPE_CHECKING:
    from harness import Stack

CUSTOMER_LEDGER = 1500
INVOICE_SERVICE = r"/Economy/InvoiceOrder/V001/InvoiceService\.asmx$"


@dataclass(frozen=True)
class Booked:
    """One invoice (or credit note, or not yet invoiced order) as the accounting system holds it."""

    id: str
    """Tripletex: the invoice id; 24SevenOffice: the order id."""
    amount: Decimal
    reference: str
    """What Qondor's External Reference of the item must hold."""
    number: str | None
    """What Qondor's external invoice number must hold (None for a 24SevenOffice order not invoiced yet)."""
    invoice_id: str | None
    paid: bool
    """Nothing outstanding (paid, or settled by a credit note)."""
    payments: int
    card_payments: int
    credits: str | None = None
    """For a credit note: the ``id`` of the booked invoice it credits."""


@dataclass(frozen=True)
class Logged:
    """One request the accounting emulator served: ``call`` is "METHOD /path" (REST) or the SOAP operation."""

    call: str
    status: int | None
    dropped: bool


@dataclass(frozen=True)
class Drop:
    """A create (or other write) call whose response a scenario loses after the commit.

    ``target`` is "accounting" or "qondor"; ``rule`` the fault rule's matching keys (method, path, and for
    SOAP the action and a request-body pattern); ``call`` the regular expression naming that call in
    :meth:`Books.log` (or Qondor's "METHOD path"); ``then`` the call that shows the retry looked for what the
    lost call made (a lookup, or the idempotent call repeated); ``per_run`` how often the sample's sync makes
    the call (what "every save loses its answer once" arms)."""

    target: str
    rule: dict[str, Any]
    call: str
    then: str
    per_run: int


QONDOR_DROPS: dict[str, Drop] = {
    # SetAs* repeat the same transition after a lost answer (Qondor treats a repeat as an idempotent no-op).
    "set-as-processed": Drop("qondor", {"method": "PUT", "path": r"/Invoicing/v1/Invoice/SetAsProcessed$"},
                             r"^PUT \S*/SetAsProcessed$", r"^PUT \S*/SetAsProcessed$", 6),
    "set-as-paid": Drop("qondor", {"method": "PUT", "path": r"/Invoicing/v1/Invoice/SetAsPaid$"},
                        r"^PUT \S*/SetAsPaid$", r"^PUT \S*/SetAsPaid$", 1),
}


def _tripletex_drops() -> dict[str, Drop]:
    calls = {  # name: (method, path, lookup after the lost response, calls per sample run)
        "customer": ("POST", r"^/v2/customer$", r"^GET /v2/customer$", 4),
        "contact": ("POST", r"^/v2/contact$", r"^GET /v2/contact$", 3),
        "employee": ("POST", r"^/v2/employee$", r"^GET /v2/employee$", 2),
        "entitlement": ("PUT", r"^/v2/employee/entitlement/:grantEntitlementsByTemplate$",
                        r"^PUT /v2/employee/entitlement/:grantEntitlementsByTemplate$", 2),
        "project": ("POST", r"^/v2/project$", r"^GET /v2/project$", 3),
        "invoice": ("POST", r"^/v2/invoice$", r"^GET /v2/invoice$", 5),
        "credit-note": ("PUT", r"^/v2/invoice/\d+/:createCreditNote$", r"^GET /v2/invoice$", 1),
    }
    return {
        name: Drop("accounting", {"method": method, "path": path}, f"^{method} {path.strip('^$')}$", then, n)
        for name, (method, path, then, n) in calls.items()
    } | QONDOR_DROPS


def _finago_drops() -> dict[str, Drop]:
    service = {"company": r"/CRM/Company/V001/CompanyService\.asmx$",
               "project": r"/Project/V001/ProjectService\.asmx$",
               "invoice": INVOICE_SERVICE}

    def soap(svc: str, action: str, body: str | None, then: str, per_run: int) -> Drop:
        rule = {"method": "POST", "path": service[svc], "action": action}
        return Drop("accounting", rule | ({"request_body": body} if body else {}), f"^{action}$", then, per_run)

    return {
        # Business customers are found again by organisation number, consumers by e-mail.
        "company": soap("company", "SaveCompanies", r"Type>Business<", r"^GetCompanies$", 3),
        "consumer": soap("company", "SaveCompanies", r"Type>Consumer<", r"^GetCompanies$", 1),
        "project": soap("project", "SaveProject", None, r"^GetSingleProject$", 3),
        # Offers and the credit note are found by ReferenceNumber; the card payment is saved paid in one call.
        "invoice": soap("invoice", "SaveInvoices", r"^(?![\s\S]*ReferenceOrderId>)[\s\S]*OrderStatus>Offer<",
                        r"^GetInvoices$", 4),
        "card-payment": soap("invoice", "SaveInvoices", r"PaymentMethodId>", r"^GetInvoices$", 1),
        "credit-note": soap("invoice", "SaveInvoices", r"ReferenceOrderId>", r"^GetInvoices$", 1),
        # The new company id written back to Qondor: the retry re-reads the customer and finds it written.
        "external-reference": Drop("qondor", {"method": "PUT", "path": r"/Customer/v1/Customer$"},
                                   r"^PUT \S*/Customer/v1/Customer$", r"^GET \S*/Customer/v1/Customer/\d+$", 3),
    } | QONDOR_DROPS


class RequestLog:
    """ASGI wrapper recording each request's SOAP operation, status and whether its response was lost (the
    24SevenOffice emulator keeps counts only; the fault suite needs the order of the calls)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.entries: list[Logged] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # app.state etc. stay reachable through the wrapper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_admin") or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        operation = (soap_action(scope) or "").rsplit("/", 1)[-1] or scope["path"]
        try:
            await self.app(scope, receive, note)
        except ResponseDropped:
            self.entries.append(Logged(operation, status[0] if status else None, True))
            raise
        self.entries.append(Logged(operation, status[0] if status else None, False))


@dataclass
class Books:
    """The questions the shared suites ask; one subclass per accounting system."""

    stack: Stack
    drops: ClassVar[dict[str, Drop]]
    """The write calls a fault scenario can lose the response of, by name."""
    invoice_save: ClassVar[dict[str, Any]]
    """The matching keys of a fault rule on the call that saves an invoice (to slow it down)."""

    @property
    def state(self) -> Any:
        return self.stack.accounting

    def invoices(self) -> dict[int, list[Booked]]:
        """Booked invoices (credit notes excluded) per Qondor invoice id."""
        raise NotImplementedError

    def credit_notes(self) -> dict[int | None, list[Booked]]:
        """Credit notes per Qondor credit note id (None: one no Qondor item claims)."""
        raise NotImplementedError

    def customers(self) -> tuple[int, int]:
        """(business customers, private individuals / consumers)."""
        raise NotImplementedError

    def projects(self) -> list[str]:
        """The projects' keys, sorted; equal to :meth:`expected_projects` when each Qondor project is there once."""
        raise NotImplementedError

    def expected_projects(self) -> list[str]:
        raise NotImplementedError

    def duplicates(self) -> dict[str, int]:
        """Business keys held more than once (must be empty): customers, projects, orders, payments."""
        raise NotImplementedError

    def reported(self, invoice: QondorInvoice) -> tuple[str | None, str | None]:
        """(external reference, external invoice number) Qondor holds for an item."""
        return invoice.external_reference, invoice.external_invoice_number

    def expect_reported(self, booked: Booked) -> tuple[str | None, str | None]:
        return booked.reference, booked.number

    def invoice(self, booked: Booked) -> Booked:
        """Finance invoices the order (a no-op for an invoice)."""
        return booked

    async def pay(self, booked: Booked) -> None:
        """The customer pays the invoice in full; finance records it."""
        raise NotImplementedError

    def log(self) -> list[Logged]:
        """Every request the emulator served, in order."""
        raise NotImplementedError

    def arm(self, rule: dict[str, Any]) -> Any:
        return self.state.faults.add(rule)

    def rate_limit(self) -> None:
        """A storm of refusals the client must wait out (Tripletex 429s; 24SevenOffice's hourly quarantine is a
        scenario of its own)."""
        raise NotImplementedError

    def one(self, qondor_id: int) -> Booked:
        found = self.invoices().get(qondor_id) or []
        assert len(found) == 1, f"{qondor_id} is booked {len(found)} times"
        return found[0]


class TripletexBooks(Books):
    drops: ClassVar[dict[str, Drop]] = _tripletex_drops()
    invoice_save: ClassVar[dict[str, Any]] = {"method": "POST", "path": r"^/v2/invoice$"}

    def _orders(self) -> dict[int, dict[str, Any]]:
        return {o["id"]: o for o in self.state.all("order")}

    def _booked(self, invoice: dict[str, Any]) -> Booked:
        payments = self.state.payments_of(invoice["id"])
        return Booked(
            id=str(invoice["id"]),
            amount=Decimal(str(invoice["amount"])),
            reference=str(invoice["id"]),
            number=str(invoice["invoiceNumber"]),
            invoice_id=str(invoice["id"]),
            paid=Decimal(str(invoice.get("amountOutstanding") or 0)) == 0,
            payments=len(payments),
            card_payments=sum(1 for p in payments if p.get("paymentTypeId") == PAYMENT_TYPE_CARD),
            credits=str(invoice["creditedInvoice"]) if invoice.get("isCreditNote") else None,
        )

    def invoices(self) -> dict[int, list[Booked]]:
        orders, office = self._orders(), self.stack.office_id
        pattern = re.compile(rf"^qondor-{office}-(\d+)$")  # domain.rules.invoice_reference
        found: dict[int, list[Booked]] = {}
        for invoice in self.state.all("invoice"):
            if invoice.get("isCreditNote"):
                continue  # a credit note shares its original's order
            for ref in invoice.get("orders") or []:
                matched = pattern.match(orders[ref["id"]].get("reference") or "")
                if matched:
                    found.setdefault(int(matched.group(1)), []).append(self._booked(invoice))
        return found

    def credit_notes(self) -> dict[int | None, list[Booked]]:
        # A Tripletex credit note carries no Qondor key: it is the Qondor credit note that reported its number.
        by_number = {i.external_invoice_number: i.id for i in self._qondor_invoices() if i.external_invoice_number}
        found: dict[int | None, list[Booked]] = {}
        for invoice in self.state.all("invoice"):
            if invoice.get("isCreditNote"):
                found.setdefault(by_number.get(str(invoice["invoiceNumber"])), []).append(self._booked(invoice))
        return found

    def _qondor_invoices(self) -> list[QondorInvoice]:
        return [self.stack.qondor.invoice_model(i["id"]) for i in self.stack.qondor.snapshot()["invoices"]]

    def customers(self) -> tuple[int, int]:
        customers = self.state.all("customer")
        private = sum(1 for c in customers if c.get("isPrivateIndividual"))
        return len(customers) - private, private

    def projects(self) -> list[str]:
        return sorted(str(p["number"]) for p in self.state.all("project"))

    def expected_projects(self) -> list[str]:
        return sorted(str(p["projectNo"]) for p in self.stack.qondor.snapshot()["projects"])

    def duplicates(self) -> dict[str, int]:
        from workers.demo import tripletex_duplicates

        found = dict(tripletex_duplicates(self.state))
        for invoice in self.state.all("invoice"):
            if len(self.state.payments_of(invoice["id"])) > 1:
                found[f"payments of invoice {invoice['id']}"] = len(self.state.payments_of(invoice["id"]))
        return found

    async def pay(self, booked: Booked) -> None:
        assert booked.invoice_id is not None
        await self.stack.tripletex_pay(int(booked.invoice_id), booked.amount)

    def log(self) -> list[Logged]:
        with self.state.lock:
            return [Logged(f"{r.method} {r.path}", r.status, r.dropped) for r in self.state.requests]

    def rate_limit(self) -> None:
        from accounting.tripletex.emulator import RateLimitConfig

        # One call per 0.25 s: a step's back-to-back calls and the concurrent syncs' calls are refused again and
        # again, however busy the machine is.
        self.state.configure_rate_limit(RateLimitConfig(limit=1, period_seconds=0.25, include_reset_on_429=True))


class FinagoBooks(Books):
    drops: ClassVar[dict[str, Drop]] = _finago_drops()
    invoice_save: ClassVar[dict[str, Any]] = {"method": "POST", "path": INVOICE_SERVICE, "action": "SaveInvoices"}

    def _orders(self) -> list[dict[str, Any]]:
        return self.state.all("orders")

    def _booked(self, order: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> Booked:
        invoice_id = order.get("InvoiceId") or None
        entries = self.state.transactions_of_invoice(invoice_id) if invoice_id else []
        payments = [t for t in entries if t.get("SystemType") == "Payment" and t.get("AccountNo") == CUSTOMER_LEDGER]
        card = sum(1 for _ in payments) if order.get("PaymentMethodId") else 0
        credited = order.get("ReferenceOrderId")
        return Booked(
            id=str(order["OrderId"]),
            amount=Decimal(str(order["OrderTotalIncVat"])),
            reference=str(order["OrderId"]),
            number=str(invoice_id) if invoice_id else None,
            invoice_id=str(invoice_id) if invoice_id else None,
            paid=bool(invoice_id) and not any(t.get("Open") for t in entries),
            payments=len(payments),
            card_payments=card,
            credits=str(credited) if credited and int(credited) in by_id else None,
        )

    def _split(self) -> tuple[dict[int, list[Booked]], dict[int | None, list[Booked]]]:
        orders = self._orders()
        by_id = {int(o["OrderId"]): o for o in orders}
        invoices: dict[int, list[Booked]] = {}
        credits: dict[int | None, list[Booked]] = {}
        for order in orders:
            key = int(order["ReferenceNumber"]) if str(order.get("ReferenceNumber") or "").isdigit() else None
            booked = self._booked(order, by_id)
            if booked.credits is not None:
                credits.setdefault(key, []).append(booked)
            elif key is not None:
                invoices.setdefault(key, []).append(booked)
        return invoices, credits

    def invoices(self) -> dict[int, list[Booked]]:
        return self._split()[0]

    def credit_notes(self) -> dict[int | None, list[Booked]]:
        return self._split()[1]

    def customers(self) -> tuple[int, int]:
        companies = self.state.all("companies")
        consumers = sum(1 for c in companies if c.get("Type") == "Consumer")
        return len(companies) - consumers, consumers

    def projects(self) -> list[str]:
        return sorted(str(p["Id"]) for p in self.state.all("projects"))

    def expected_projects(self) -> list[str]:
        return sorted(str(p["id"]) for p in self.stack.qondor.snapshot()["projects"])  # the sample has no SO numbers

    def duplicates(self) -> dict[str, int]:
        keys: Counter[str] = Counter()
        for company in self.state.all("companies"):
            if company.get("Type") == "Consumer":
                emails = company.get("EmailAddresses") or {}
                email = next((e.get("Value") for e in emails.values() if isinstance(e, dict) and e.get("Value")), None)
                keys[f"consumer {normalise_email(email)}"] += 1
                continue
            if company.get("ExternalId"):
                keys[f"company ExternalId {company['ExternalId']}"] += 1
            if company.get("OrganizationNumber"):
                keys[f"company org {normalise_org_number(company['OrganizationNumber'])}"] += 1
        for project in self.state.all("projects"):
            keys[f"project {project.get('Name')}"] += 1
        for order in self._orders():
            keys[f"order {order.get('ReferenceNumber')}"] += 1
        for entry in self.state.transactions:
            if entry.get("SystemType") == "Payment" and entry.get("AccountNo") == CUSTOMER_LEDGER:
                keys[f"payment of invoice {entry.get('InvoiceNo')}"] += 1
        return {key: n for key, n in keys.items() if n > 1}

    def invoice(self, booked: Booked) -> Booked:
        if booked.invoice_id is None:
            self.state.invoice_order(int(booked.id))
        order = next(o for o in self._orders() if str(o["OrderId"]) == booked.id)
        return self._booked(order, {int(o["OrderId"]): o for o in self._orders()})

    async def pay(self, booked: Booked) -> None:
        assert booked.invoice_id is not None, "finance invoices the order first"
        self.state.register_payment(int(booked.invoice_id), booked.amount)

    def log(self) -> list[Logged]:
        log = self.stack.accounting_log
        assert log is not None, "the stack's 24SevenOffice emulator is not wrapped in a RequestLog"
        return list(log.entries)

    def rate_limit(self) -> None:
        raise NotImplementedError("24SevenOffice limits per hour: see the quarantine scenario")


BOOKS: dict[AccountingSystem, type[Books]] = {
    AccountingSystem.TRIPLETEX: TripletexBooks,
    AccountingSystem.FINAGO: FinagoBooks,
}


def books_for(stack: Stack) -> Books:
    """The probe of the stack's accounting system."""
    return BOOKS[stack.system](stack)
