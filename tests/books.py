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
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounting.tripletex.emulator import PAYMENT_TYPE_BANK, PAYMENT_TYPE_CARD
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
    request: str = ""
    """The path, the decoded query and the body: what the request asked for (a lookup's key, a write's data)."""
    answer: str = ""
    """The response body (empty when the response was lost)."""


@dataclass(frozen=True)
class Carried:
    """How a request shows it is about the lost write's item: ``key`` (regular expressions with one group, tried
    in order) takes the item's key from the lost request; ``pattern`` (with ``{key}``, inserted escaped) must be
    found in a later request's ``part`` ("request" or "answer")."""

    key: tuple[str, ...]
    pattern: str
    part: Literal["request", "answer"] = "request"

    def key_of(self, lost: Logged) -> str | None:
        for regex in self.key:
            found = re.search(regex, lost.request)
            if found:
                return found.group(1)
        return None

    def found_in(self, entry: Logged, key: str) -> bool:
        text = entry.request if self.part == "request" else entry.answer
        return re.search(self.pattern.replace("{key}", re.escape(key)), text) is not None


@dataclass(frozen=True)
class Drop:
    """A create (or other write) call whose response a scenario loses after the commit.

    ``target`` is "accounting" or "qondor"; ``rule`` the fault rule's matching keys (method, path, and for
    SOAP the action and a request-body pattern); ``call`` the regular expression naming that call in
    :meth:`Books.log` (or Qondor's "METHOD path"); ``then`` the call that shows the retry looked for what the
    lost call made (a lookup, or the idempotent call repeated); ``per_run`` how often the sample's sync makes
    the call (what "every save loses its answer once" arms); ``carries`` what a ``then`` call must hold to be
    about the lost call's own item (every one of them, in the same call): its key in the query or body, or,
    where the system's lookup cannot filter by the Qondor key (invoices are listed per customer), the customer
    in the request and the lost item's key in the answer."""

    target: str
    rule: dict[str, Any]
    call: str
    then: str
    per_run: int
    carries: tuple[Carried, ...] = ()

    def looked_for(self, log: list[Logged]) -> tuple[str, bool]:
        """(the lost item's key, whether a ``then`` call after the lost one carried it), from the request log."""
        [lost] = [i for i, entry in enumerate(log) if entry.dropped]
        keys = [carried.key_of(log[lost]) or "" for carried in self.carries]
        assert self.carries and all(keys), f"no key of {self.carries} in the lost request {log[lost].request}"
        found = any(
            re.search(self.then, entry.call)
            and all(carried.found_in(entry, key) for carried, key in zip(self.carries, keys, strict=True))
            for entry in log[lost + 1:]
        )
        return ", ".join(keys), found


QONDOR_DROPS: dict[str, Drop] = {
    # SetAs* repeat the same transition after a lost answer (Qondor treats a repeat as an idempotent no-op).
    "set-as-processed": Drop("qondor", {"method": "PUT", "path": r"/Invoicing/v1/Invoice/SetAsProcessed$"},
                             r"^PUT \S*/SetAsProcessed$", r"^PUT \S*/SetAsProcessed$", 6),
    "set-as-paid": Drop("qondor", {"method": "PUT", "path": r"/Invoicing/v1/Invoice/SetAsPaid$"},
                        r"^PUT \S*/SetAsPaid$", r"^PUT \S*/SetAsPaid$", 1),
}


def _query(name: str) -> str:
    """A query parameter ``name`` equal to the key (the logged query is decoded; the body follows a newline)."""
    return rf"[?&]{name}={{key}}[&\n]"


def _json(name: str, value: str = r'"([^"]+)"') -> str:
    """A JSON member ``name`` of a request body, its value the key."""
    return rf'"{name}":\s*{value}'


def _tripletex_drops() -> dict[str, Drop]:
    email = Carried((_json("email"),), _query("email"))
    # Invoices are listed per customer (the list has no reference filter): the lookup names the lost invoice's
    # customer, and its answer holds the lost invoice, by the order reference carrying the Qondor key.
    customer = Carried((_json("customer", r'\{\s*"id":\s*(\d+)'),), _query("customerId"))
    booked = (Carried((_json("reference"),), _json("reference", '"{key}"'), "answer"), customer)
    calls = {  # name: (method, path, lookup after the lost response, calls per sample run, what it carries)
        "customer": ("POST", r"^/v2/customer$", r"^GET /v2/customer$", 4,
                     (Carried((_json("organizationNumber"), _json("email")), _query("(?:organizationNumber|email)")),)),
        "contact": ("POST", r"^/v2/contact$", r"^GET /v2/contact$", 3,
                    (email, customer)),
        "employee": ("POST", r"^/v2/employee$", r"^GET /v2/employee$", 2, (email,)),
        "entitlement": ("PUT", r"^/v2/employee/entitlement/:grantEntitlementsByTemplate$",
                        r"^PUT /v2/employee/entitlement/:grantEntitlementsByTemplate$", 2,
                        (Carried((r"[?&]employeeId=(\d+)",), _query("employeeId")),)),
        "project": ("POST", r"^/v2/project$", r"^GET /v2/project$", 3,
                    (Carried((_json("number"),), _query("number")),)),
        "invoice": ("POST", r"^/v2/invoice$", r"^GET /v2/invoice$", 5, booked),
        # A full credit note carries no reference of ours: the answer holds an invoice crediting the original.
        "credit-note": ("PUT", r"^/v2/invoice/\d+/:createCreditNote$", r"^GET /v2/invoice$", 1,
                        (Carried((r"^/v2/invoice/(\d+)/:createCreditNote\?",), _json("creditedInvoice", "{key}[,}]"),
                                 "answer"),)),
    }
    return {
        name: Drop("accounting", {"method": method, "path": path}, f"^{method} {path.strip('^$')}$", then, n, carries)
        for name, (method, path, then, n, carries) in calls.items()
    } | QONDOR_DROPS


def _tag(name: str) -> str:
    """The start tag of element ``name`` of a SOAP body (any namespace prefix)."""
    return rf"<(?:\w+:)?{name}>"


def _xml(name: str, value: str = r"([^<]+)") -> str:
    """An element ``name`` of a SOAP body, its text the key."""
    return rf"{_tag(name)}{value}<"


def _finago_drops() -> dict[str, Drop]:
    service = {"company": r"/CRM/Company/V001/CompanyService\.asmx$",
               "project": r"/Project/V001/ProjectService\.asmx$",
               "invoice": INVOICE_SERVICE}

    def soap(svc: str, action: str, body: str | None, then: str, per_run: int, *carries: Carried) -> Drop:
        rule = {"method": "POST", "path": service[svc], "action": action}
        return Drop("accounting", rule | ({"request_body": body} if body else {}), f"^{action}$", then, per_run,
                    carries)

    # Orders are listed per customer (GetInvoices has no ReferenceNumber filter): the lookup names the lost order's
    # customer, and its answer holds the lost order, by its ReferenceNumber (the Qondor invoice id).
    order = (Carried((_xml("ReferenceNumber"),), _xml("ReferenceNumber", "{key}"), "answer"),
             Carried((_tag("InvoiceOrder") + r"[\s\S]*?" + _xml("CustomerId", r"(\d+)"),),
                     _tag("CustomerIds") + r"\s*" + _xml("int", "{key}")))
    return {
        # Business customers are found again by organisation number, consumers by e-mail.
        "company": soap("company", "SaveCompanies", r"Type>Business<", r"^GetCompanies$", 3,
                        Carried((_xml("OrganizationNumber"),), _xml("OrganizationNumber", "{key}"))),
        "consumer": soap("company", "SaveCompanies", r"Type>Consumer<", r"^GetCompanies$", 1,
                         Carried((_xml("Value", r"([^<@]+@[^<]+)"),), _xml("CompanyEmail", "{key}"))),
        "project": soap("project", "SaveProject", None, r"^GetSingleProject$", 3,
                        Carried((_tag("project") + _xml("Id", r"(\d+)"),), _xml("projectId", "{key}"))),
        # Offers and the credit note are found by ReferenceNumber; the card payment is saved paid in one call.
        "invoice": soap("invoice", "SaveInvoices", r"^(?![\s\S]*ReferenceOrderId>)[\s\S]*OrderStatus>Offer<",
                        r"^GetInvoices$", 4, *order),
        "card-payment": soap("invoice", "SaveInvoices", r"PaymentMethodId>", r"^GetInvoices$", 1, *order),
        "credit-note": soap("invoice", "SaveInvoices", r"ReferenceOrderId>", r"^GetInvoices$", 1, *order),
        # The new company id written back to Qondor: the retry re-reads the customer and finds it written.
        "external-reference": Drop("qondor", {"method": "PUT", "path": r"/Customer/v1/Customer$"},
                                   r"^PUT \S*/Customer/v1/Customer$", r"^GET \S*/Customer/v1/Customer/\d+$", 3),
    } | QONDOR_DROPS


class RequestLog:
    """ASGI wrapper recording each request the worker sends the accounting emulator: its call (SOAP operation, or
    "METHOD /path"), status, whether its response was lost, what it asked (path, decoded query, body) and the
    answer. The emulators keep counts or paths only; the fault suite needs the order of the calls and their keys."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.entries: list[Logged] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # app.state etc. stay reachable through the wrapper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_admin"):
            await self.app(scope, receive, send)
            return
        status: list[int] = []
        asked: list[bytes] = []
        answered: list[bytes] = []

        async def tap() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                asked.append(message.get("body", b""))
            return message

        async def note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                answered.append(message.get("body", b""))
            await send(message)

        action = (soap_action(scope) or "").rsplit("/", 1)[-1]
        call = action or f"{scope['method']} {scope['path']}"

        def entry(dropped: bool) -> Logged:
            query = unquote_plus(scope.get("query_string", b"").decode())
            request = f"{scope['path']}?{query}\n{b''.join(asked).decode(errors='replace')}"
            return Logged(call, status[0] if status else None, dropped, request,
                          b"".join(answered).decode(errors="replace"))

        try:
            await self.app(scope, tap, note)
        except ResponseDropped:
            self.entries.append(entry(True))
            raise
        self.entries.append(entry(False))


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

    def customer_details(self, organisation_number: str) -> dict[str, str]:
        """The e-mail, phone and address the accounting system holds for the customer with that organisation
        number ("" for a field it does not hold); the contact person's too where the system has them."""
        raise NotImplementedError

    def reported(self, invoice: QondorInvoice) -> tuple[str | None, str | None]:
        """(external reference, external invoice number) Qondor holds for an item."""
        return invoice.external_reference, invoice.external_invoice_number

    def expect_reported(self, booked: Booked) -> tuple[str | None, str | None]:
        return booked.reference, booked.number

    def invoice(self, booked: Booked) -> Booked:
        """Finance invoices the order (a no-op for an invoice)."""
        return booked

    async def pay(self, booked: Booked, on: date | None = None) -> None:
        """The customer pays ``booked.amount`` of the invoice; finance records it, dated ``on`` (default today)."""
        raise NotImplementedError

    def log(self) -> list[Logged]:
        """Every request the worker sent the accounting emulator, in order (the stack's :class:`RequestLog`)."""
        log = self.stack.accounting_log
        assert log is not None, "the stack's accounting emulator is not wrapped in a RequestLog"
        return list(log.entries)

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
        """Invoices, and (order mode) the orders finance has not invoiced yet (``invoice_id`` None)."""
        orders, office = self._orders(), self.stack.office_id
        pattern = re.compile(rf"^qondor-{office}-(\d+)$")  # domain.rules.invoice_reference
        found: dict[int, list[Booked]] = {}
        invoiced: set[int] = set()
        for invoice in self.state.all("invoice"):
            invoiced |= {ref["id"] for ref in invoice.get("orders") or []}
            if invoice.get("isCreditNote"):
                continue  # a credit note shares its original's order
            for ref in invoice.get("orders") or []:
                matched = pattern.match(orders[ref["id"]].get("reference") or "")
                if matched:
                    found.setdefault(int(matched.group(1)), []).append(self._booked(invoice))
        for order in orders.values():
            matched = pattern.match(order.get("reference") or "")
            if matched and order["id"] not in invoiced:
                found.setdefault(int(matched.group(1)), []).append(self._open_order(order))
        return found

    def _open_order(self, order: dict[str, Any]) -> Booked:
        lines = [self.state.require("orderLine", ref["id"]) for ref in order.get("orderLines") or []]
        amount = sum((Decimal(str(ln.get("amountIncludingVatCurrency") or 0)) for ln in lines), Decimal(0))
        return Booked(id=str(order["id"]), amount=amount, reference=str(order["id"]), number=None, invoice_id=None,
                      paid=False, payments=0, card_payments=0)

    def invoice(self, booked: Booked) -> Booked:
        """Order mode: finance invoices the order (``PUT /order/{id}/:invoice``), dated today."""
        if booked.invoice_id is not None:
            return booked
        from accounting.tripletex.emulator import invoicing

        with self.state.lock:
            made = invoicing.invoice_order(self.state, int(booked.id), self.state.today(), send_to_customer=False)
        return self._booked(made)

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

    def customer_details(self, organisation_number: str) -> dict[str, str]:
        found = [c for c in self.state.all("customer") if c.get("organizationNumber") == organisation_number]
        assert len(found) == 1, f"{len(found)} customers with organisation number {organisation_number}"
        customer = found[0]
        address = self.state.get("address", (customer.get("postalAddress") or {}).get("id")) or {}
        contacts = [c for c in self.state.all("contact") if (c.get("customer") or {}).get("id") == customer["id"]]
        return {
            "email": customer.get("email") or "",
            "invoice email": customer.get("invoiceEmail") or "",
            "phone": customer.get("phoneNumber") or "",
            "address": " ".join(str(address.get(k) or "") for k in ("addressLine1", "postalCode", "city")).strip(),
            "contact phone": " ".join(c.get("phoneNumberWork") or "" for c in contacts).strip(),
        }

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

    async def pay(self, booked: Booked, on: date | None = None) -> None:
        assert booked.invoice_id is not None
        async with self.stack.tripletex_client() as client:
            await client.register_payment(int(booked.invoice_id), payment_date=on or date.today(),
                                          payment_type_id=PAYMENT_TYPE_BANK, paid_amount=booked.amount)

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

    def customer_details(self, organisation_number: str) -> dict[str, str]:
        found = [c for c in self.state.all("companies")
                 if normalise_org_number(c.get("OrganizationNumber")) == organisation_number]
        assert len(found) == 1, f"{len(found)} companies with organisation number {organisation_number}"
        company = found[0]
        emails = {e.get("Value") for e in (company.get("EmailAddresses") or {}).values() if isinstance(e, dict)}
        address = (company.get("Addresses") or {}).get("Invoice") or {}
        return {
            "email": " ".join(sorted(e for e in emails if e)),
            "address": " ".join(str(address.get(k) or "") for k in ("Street", "PostalCode", "City")).strip(),
        }

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

    async def pay(self, booked: Booked, on: date | None = None) -> None:
        assert booked.invoice_id is not None, "finance invoices the order first"
        when = datetime.combine(on, datetime.min.time()) if on is not None else None  # naive UTC, as it keeps
        self.state.register_payment(int(booked.invoice_id), booked.amount, when)

    def rate_limit(self) -> None:
        raise NotImplementedError("24SevenOffice limits per hour: see the quarantine scenario")


BOOKS: dict[AccountingSystem, type[Books]] = {
    AccountingSystem.TRIPLETEX: TripletexBooks,
    AccountingSystem.FINAGO: FinagoBooks,
}


def books_for(stack: Stack) -> Books:
    """The probe of the stack's accounting system."""
    return BOOKS[stack.system](stack)
