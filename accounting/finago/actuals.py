"""24SevenOffice actual costs and sales, read from TransactionService (NOTES §6) for the cost and sales sync.

What counts (the seed's "Cost and sales sync"):

* **Costs**: supplier transactions (``SystemType`` InvoiceSupplier, then CreditnoteSupplier): each transaction
  set (voucher, ``TransactionNo``) with debit entries on expense accounts that carry a Project dimension gives
  one cost per project: excl. VAT = that project's expense entries, VAT = the VAT entries that follow them (a
  VAT entry belongs to the line before it, so the VAT of a balance-sheet line is not a cost; one that names a
  project counts for that project); the supplier is the company on the supplier-ledger entry (name read from
  CompanyService), which also gives the invoice number, due date, currency and the payment status (``Open``).
* **Sales**: customer transactions (InvoiceCustomer, CreditnoteCustomer, CashSale) with revenue entries that
  carry a project, the customer from the customer-ledger entry (a cash sale: from its lines), signs turned so
  revenue is positive. Each system type is one pass over the window (a search takes one type); a credit note
  is a document of its own (a negative cost or sale). A sale names its invoice number (``source_invoice_id``;
  24SevenOffice's invoice number is the InvoiceId), so the sync can leave out the invoices the invoice sync
  booked from Qondor's queue.

Expense and revenue accounts: GetAccountList has no account type (NOTES §7), so the class comes from the
account number, as the Norwegian standard chart (NS 4102) every 24SevenOffice client uses lays it out: 3xxx
revenue, 4xxx-7xxx operating expenses, 1xxx-2xxx balance sheet (2700-2799 VAT). The account list is still read
(cached) for the account name, a cost line's description when finance wrote no comment.

Documents, keys and changes:

* The sets of one invoice (its own, and a reversal, which carries the same invoice number and party) are read
  together as one document; a document whose amounts net to nothing for a project was reversed (skipped).
  They net when one page holds both (a reversal on the original's date, as the emulator makes it); a reversal
  dated into another page, or numbered into another range of a dense day, is read as a negative actual of its
  own beside the original's, so Qondor's total is still right.
  A set whose entries do not sum to zero is an ``ActualProblem`` naming its transaction number (no names).
* ``external_reference`` = ``24so:{kind}:transaction:{first TransactionNo}:project:{project id}``: stable
  across runs and LinkId changes (a LinkId is re-issued on every new link and never used as a key); a line
  moved to another project gives another reference (the old one is no longer seen, so the sync removes it).
* The project number is the Qondor project number that maps to the 24SevenOffice project id by the linking
  rule ("SO" + digits, else the Qondor project id), from Qondor's project list; a project id no Qondor
  project maps to is reported as ``SO{id}`` (the sync counts it skipped: no such Qondor project).

Paging: the window is read in date sub-windows (by entry date; the client sends DateEnd as 23:59:59, so the
end day is included), each sized from the density seen so far so a page holds about ``limit`` entries. A
day denser than ``limit`` (and the first day, whose density is not known yet) is split by transaction
number: its ledger entries (one per set) are read first as an index, then the day in contiguous
``TransactionNoStart``/``End`` ranges of about ``limit`` entries (a set's entries share its number, so a set is
never cut in two). The cursor (JSON, opaque to the sync) holds the next day, span, density and a dense day's
remaining ranges. Memory per page stays about ``limit`` entries however long the window.

Reference data (accounts, company names, Qondor's project numbers) is cached per office for
``REFERENCE_TTL_SECONDS``, so a page costs one GetTransactions (plus the index read of a dense day) and one
GetCompanies for companies not seen yet. Calls go through the office's client, which
paces them under the hourly budget and waits out (or raises) a quarantine.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from accounting.finago.client import FinagoClient
from accounting.finago.mapping import SO_PROJECT_NUMBER
from domain.actuals import Actual, ActualKind, ActualProblem, ActualsPage, ActualsWindow, PaymentStatus

FIRST_SPAN_DAYS = 1
MAX_ENTRIES_PER_SET = 16
"""The most entries a set is expected to hold (ledger entry, lines, their VAT), to size a dense day's ranges."""
MAX_CHUNKS = 256
"""The most transaction-number ranges a dense day is cut into (they travel in the cursor)."""
MAX_SPAN_DAYS = 92
"""The widest date range one page reads; a sparse window (the usual case) is crossed in a few pages."""
REFERENCE_TTL_SECONDS = 600.0
REVENUE_ACCOUNTS = range(3000, 4000)
EXPENSE_ACCOUNTS = range(4000, 8000)
VAT_ACCOUNTS = range(2700, 2800)
BALANCE_ACCOUNTS = range(1000, 3000)
SUPPLIER_LEDGER = 2400
CUSTOMER_LEDGER = 1500
SUPPLIER_TYPES = frozenset({"InvoiceSupplier", "CreditnoteSupplier"})
SYSTEM_TYPES: dict[ActualKind, tuple[str, ...]] = {
    ActualKind.COST: ("InvoiceSupplier", "CreditnoteSupplier"),
    ActualKind.SALE: ("InvoiceCustomer", "CreditnoteCustomer", "CashSale"),
}
"""The transaction system types each kind reads, one pass over the window each (a search takes one type, and
reading the whole ledger for the sales would read every supplier set too). A credit note is a document of its
own: a negative cost or sale. Manual journals (``Miscellaneous``) are not read."""

log = logging.getLogger(__name__)

ProjectNumbers = Callable[[int], Awaitable[dict[int, str]]]
"""office id -> {24SevenOffice project id: Qondor project number}."""


Chunk = tuple[int | None, int | None]
"""An inclusive transaction-number range of one day (None: open-ended)."""


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: its first day, how many days it spans, the density seen so far (entries per
    day) and, inside a day too dense for one page, that day's remaining transaction-number ranges (each of
    ``chunk_sets`` sets), the entries per set seen so far in it, and the entries read of it so far."""

    day: date
    span: int = 1
    density: float | None = None
    chunks: tuple[Chunk, ...] = ()
    chunk_sets: int = 1
    per_set: float | None = None
    day_read: int = 0
    phase: int = 0
    """Which of the kind's system types (``SYSTEM_TYPES``) is being read; each is one pass over the window."""

    def encode(self) -> str:
        return json.dumps({"day": self.day.isoformat(), "span": self.span, "density": self.density,
                           "chunks": [list(c) for c in self.chunks], "chunkSets": self.chunk_sets,
                           "perSet": self.per_set, "dayRead": self.day_read, "phase": self.phase})

    @classmethod
    def decode(cls, text: str | None, window: ActualsWindow) -> Cursor:
        if not text:
            return cls(window.start, FIRST_SPAN_DAYS)
        data = json.loads(text)
        day = date.fromisoformat(data["day"])
        if day < window.start:  # a cursor from another window: start this one afresh
            return cls(window.start, FIRST_SPAN_DAYS)
        return cls(day, max(1, int(data.get("span") or 1)), data.get("density"),
                   tuple((lo, hi) for lo, hi in data.get("chunks") or ()), max(1, int(data.get("chunkSets") or 1)),
                   data.get("perSet"), int(data.get("dayRead") or 0), int(data.get("phase") or 0))


def numbers_by_project_id(projects: Iterable[tuple[str | None, int]]) -> dict[int, str]:
    """24SevenOffice project id -> Qondor project number for Qondor's (number, id) pairs, by the linking rule
    ("SO" + digits gives the digits, else the Qondor id). Where two Qondor projects land on one id, the one
    whose number names it ("SO" + digits) wins: that is the project finance sees under that id."""
    by_qondor_id: dict[int, str] = {}
    named: dict[int, str] = {}
    for number, qondor_id in projects:
        if not (number or "").strip():
            continue
        match = SO_PROJECT_NUMBER.match(number.strip())
        if match:
            named[int(match.group(1))] = number  # as Qondor spells it, so the sync's match is exact
        else:
            by_qondor_id[int(qondor_id)] = number
    return by_qondor_id | named


def _onwards(following: Cursor, window: ActualsWindow, phases: int) -> str | None:
    """The next page's cursor: ``following`` inside the window, else the next system type's pass from the
    window's start, else None (done)."""
    if following.day <= window.end:
        return following.encode()
    if following.phase + 1 < phases:
        return Cursor(window.start, FIRST_SPAN_DAYS, phase=following.phase + 1).encode()
    return None


def next_span(span: int, days: int, read: int, limit: int) -> int:
    """Days for the next page so it reads about ``limit`` entries, judging by this page's density."""
    if read == 0:
        return min(MAX_SPAN_DAYS, span * 2)
    per_day = read / max(1, days)
    return max(1, min(MAX_SPAN_DAYS, int(limit / per_day)))


def day_chunks(numbers: list[int], per_chunk: int) -> tuple[Chunk, ...]:
    """Contiguous ranges over a day's transaction numbers, ``per_chunk`` sets each; the first and last are
    open-ended, so a set the index did not list (no ledger entry) is still read, once."""
    bounds = sorted(set(numbers))[per_chunk::per_chunk]
    if not bounds:
        return ((None, None),)
    starts: list[int | None] = [None, *bounds]
    ends: list[int | None] = [b - 1 for b in bounds] + [None]
    return tuple(zip(starts, ends, strict=True))


def _dimension(entry: dict[str, Any], kind: str) -> tuple[int | None, str | None]:
    """(id, name) of an entry's dimension of this type (Project, Customer), (None, None) when it has none."""
    for dim in (entry.get("Dimensions") or {}).get("Dimension") or []:
        if dim and dim.get("Type") == kind and str(dim.get("Value") or "").strip().isdigit():
            return int(dim["Value"]), dim.get("Name")
    return None, None


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _amount(entry: dict[str, Any]) -> Decimal:
    return Decimal(str(entry.get("Amount") or 0))


@dataclass
class _Document:
    """The transaction sets of one invoice (its own and its reversals), in transaction-number order."""

    sets: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return min(self.sets)

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Set by set, each in its line order (a VAT entry follows the line it was computed from)."""
        return [e for number in sorted(self.sets)
                for e in sorted(self.sets[number], key=lambda e: e.get("SequenceNo") or 0)]

    def ledger_entry(self, account: int) -> dict[str, Any] | None:
        return next((e for e in self.sets[self.first] if e.get("AccountNo") == account), None)


@dataclass
class _Names:
    """Company names per office, each kept REFERENCE_TTL_SECONDS; missing ones read in one GetCompanies."""

    by_office: dict[int, dict[int, tuple[float, str]]] = field(default_factory=dict)

    async def get(self, office_id: int, client: FinagoClient, ids: set[int]) -> dict[int, str]:
        known = self.by_office.setdefault(office_id, {})
        now = time.monotonic()
        missing = [i for i in sorted(ids) if i not in known or now - known[i][0] > REFERENCE_TTL_SECONDS]
        if missing:
            for company in await client.get_companies_by_ids(missing, return_properties=("Id", "Name")):
                known[int(company["Id"])] = (now, company.get("Name") or "")
        return {i: known[i][1] for i in ids if i in known}


class FinagoActuals:
    """Reads pages of actuals for the adapter (``FinagoAdapter.actuals_page``); holds the reference caches.

    ``reference`` is the adapter's per-office TTL cache class (``_Reference``), passed in so both share one."""

    def __init__(self, client_of: Callable[[int], FinagoClient], project_numbers: ProjectNumbers,
                 reference: Callable[[Callable[[int], Awaitable[Any]]], Any]) -> None:
        self._client_of = client_of
        self._accounts = reference(self._read_accounts)
        self._projects = reference(project_numbers)
        self._names = _Names()

    async def _read_accounts(self, office_id: int) -> dict[int, str]:
        accounts = await self._client_of(office_id).account_list()
        return {int(a["AccountNo"]): a.get("AccountName") or "" for a in accounts}

    async def page(self, office_id: int, kind: ActualKind, window: ActualsWindow, cursor: str | None,
                   limit: int) -> ActualsPage:
        """One page of the window (module docstring), from ``cursor``."""
        position = Cursor.decode(cursor, window)
        types = SYSTEM_TYPES[kind]
        if position.day > window.end or position.phase >= len(types):
            return ActualsPage()
        client = self._client_of(office_id)
        system_type = types[position.phase]
        if not position.chunks and (position.density is None or position.density > limit):
            position = await self._split_day(client, kind, system_type, position, limit)
        if position.chunks:
            return await self._read_chunk(office_id, client, kind, system_type, window, position, limit)
        end = min(position.day + timedelta(days=position.span - 1), window.end)
        entries = await client.get_transactions(date_start=position.day, date_end=end, system_type=system_type)
        page = await self._read(office_id, client, kind, entries)
        page.read = len(entries)
        days = (end - position.day).days + 1
        following = Cursor(end + timedelta(days=1), next_span(position.span, days, len(entries), limit),
                           len(entries) / days, phase=position.phase)
        page.cursor = _onwards(following, window, len(types))
        return page

    async def _split_day(self, client: FinagoClient, kind: ActualKind, system_type: str, position: Cursor,
                         limit: int) -> Cursor:
        """A day expected to hold more than ``limit`` entries (or the first day, whose density is unknown): its
        sets' numbers, from the ledger entries only (one per set), cut into small ranges (a set holding at most
        ``MAX_ENTRIES_PER_SET`` entries, a range is at most a quarter of ``limit`` entries; at most ``MAX_CHUNKS``
        ranges, so the cursor stays small); each page then reads as many ranges as fit ``limit`` by the sets
        seen."""
        ledger = SUPPLIER_LEDGER if kind is ActualKind.COST else CUSTOMER_LEDGER
        index = await client.get_transactions(date_start=position.day, date_end=position.day,
                                              system_type=system_type, account_from=ledger, account_to=ledger)
        numbers = sorted({int(e["TransactionNo"]) for e in index if e.get("TransactionNo") is not None})
        chunk_sets = max(1, limit // (4 * MAX_ENTRIES_PER_SET), -(-len(numbers) // MAX_CHUNKS))
        per_set = position.density / len(numbers) if position.density is not None and numbers else None
        return Cursor(position.day, 1, position.density, day_chunks(numbers, chunk_sets), chunk_sets, per_set,
                      phase=position.phase)

    async def _read_chunk(self, office_id: int, client: FinagoClient, kind: ActualKind, system_type: str,
                          window: ActualsWindow, position: Cursor, limit: int) -> ActualsPage:
        """As many of the day's ranges as fit ``limit`` (one while the set size is not known yet)."""
        fit = 1 if position.per_set is None else max(1, int(limit / (position.per_set * position.chunk_sets)))
        taken, rest = position.chunks[:fit], position.chunks[fit:]
        entries = await client.get_transactions(
            date_start=position.day, date_end=position.day, system_type=system_type,
            transaction_no_from=taken[0][0], transaction_no_to=taken[-1][1],
        )
        page = await self._read(office_id, client, kind, entries)
        page.read = len(entries)
        day_read = position.day_read + len(entries)
        sets = len({e.get("TransactionNo") for e in entries})
        per_set = len(entries) / sets if sets else position.per_set
        if rest:
            page.cursor = Cursor(position.day, 1, position.density, rest, position.chunk_sets, per_set, day_read,
                                 position.phase).encode()
        else:
            following = Cursor(position.day + timedelta(days=1), 1, float(day_read), phase=position.phase)
            page.cursor = _onwards(following, window, len(SYSTEM_TYPES[kind]))
        return page

    async def _read(self, office_id: int, client: FinagoClient, kind: ActualKind,
                    entries: list[dict[str, Any]]) -> ActualsPage:
        cost = kind is ActualKind.COST
        ledger = SUPPLIER_LEDGER if cost else CUSTOMER_LEDGER
        page = ActualsPage()
        documents = _documents(entries, cost, ledger)
        parties = {p for doc in documents for p in [_party(doc, ledger)[0]] if p is not None}
        names = await self._names.get(office_id, client, parties) if parties else {}
        accounts = await self._accounts.get(office_id) if cost else {}
        numbers = await self._projects.get(office_id)
        for doc in documents:
            unbalanced = [n for n, entries_ in doc.sets.items() if sum(map(_amount, entries_), Decimal(0)) != 0]
            if unbalanced:
                for number in unbalanced:
                    difference = sum(map(_amount, doc.sets[number]), Decimal(0))
                    log.warning("24SevenOffice office %s: transaction %s does not balance (%s); skipped",
                                office_id, number, difference)
                    page.problems.append(ActualProblem(
                        source=f"transaction {number}",
                        message=f"24SevenOffice transaction {number}: its entries do not balance (debits minus "
                                f"credits = {difference}); it is not synced until finance corrects it.",
                    ))
                continue
            for actual in _actuals_of(doc, kind, ledger, names, accounts, numbers, page.skipped):
                page.actuals.append(actual)
        return page


def _documents(entries: list[dict[str, Any]], cost: bool, ledger: int) -> list[_Document]:
    """Transaction sets of the kind, grouped per document: (party, invoice number), else the set on its own."""
    sets: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        system_type = entry.get("SystemType")
        if cost != (system_type in SUPPLIER_TYPES) or system_type == "Payment":
            continue
        sets[int(entry["TransactionNo"])].append(entry)
    documents: dict[tuple[Any, ...], _Document] = {}
    for number in sorted(sets):
        ledger_entry = next((e for e in sets[number] if e.get("AccountNo") == ledger), None)
        party = _dimension(ledger_entry, "Customer")[0] if ledger_entry else None
        invoice = (ledger_entry or {}).get("InvoiceNo")
        key = ("invoice", party, invoice) if party is not None and invoice else ("set", number)
        documents.setdefault(key, _Document()).sets[number] = sets[number]
    return list(documents.values())


def _party(doc: _Document, ledger: int) -> tuple[int | None, str | None]:
    """(company id, dimension name) of the document's party: on its ledger entry, else (a cash sale has no
    ledger entry) on its first entry that names one."""
    entry = doc.ledger_entry(ledger) or next((e for e in doc.entries if _dimension(e, "Customer")[0] is not None),
                                             None)
    return _dimension(entry, "Customer") if entry else (None, None)


def _actuals_of(doc: _Document, kind: ActualKind, ledger: int, names: dict[int, str], accounts: dict[int, str],
                numbers: dict[int, str], skipped: dict[str, int]) -> list[Actual]:
    cost = kind is ActualKind.COST
    sign = Decimal(1) if cost else Decimal(-1)
    base_accounts = EXPENSE_ACCOUNTS if cost else REVENUE_ACCOUNTS
    net: dict[int, Decimal] = defaultdict(Decimal)
    vat: dict[int, Decimal] = defaultdict(Decimal)
    comments: dict[int, str] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    counted: int | None = None  # the project of the base line a VAT entry that follows it belongs to
    for entry in doc.entries:
        account = int(entry.get("AccountNo") or 0)
        project, _ = _dimension(entry, "Project")
        if account in VAT_ACCOUNTS:
            if counted is not None:
                vat[project if project is not None else counted] += sign * _amount(entry)
            continue
        counted = None
        if account in base_accounts:
            if project is None:
                skip("no project")
                continue
            counted = project
            net[project] += sign * _amount(entry)
            if project not in comments and int(entry["TransactionNo"]) == doc.first:
                comments[project] = (entry.get("Comment") or "").strip() or accounts.get(account, "")
        elif account in BALANCE_ACCOUNTS and account != ledger and project is not None:
            skip("balance-sheet account")
    ledger_entry = doc.ledger_entry(ledger) or {}
    party, dimension_name = _party(doc, ledger)
    counterparty = names.get(party) if party is not None else None
    paid = not ledger_entry.get("Open", True) if ledger_entry else True  # no ledger entry: nothing was owed
    first = doc.sets[doc.first][0]
    invoice_no = ledger_entry.get("InvoiceNo") or first.get("InvoiceNo")
    actuals = []
    for project in sorted(net):
        excl, tax = net[project], vat.get(project, Decimal(0))
        if excl == 0 and tax == 0:
            skip("reversed" if len(doc.sets) > 1 else "zero amount")
            continue
        actuals.append(Actual(
            kind=kind,
            external_reference=f"24so:{kind.value}:transaction:{doc.first}:project:{project}",
            project_number=numbers.get(project) or f"SO{project}",
            counterparty=counterparty or dimension_name or (f"company {party}" if party is not None else ""),
            document_number=str(invoice_no or doc.first),
            description=comments.get(project) or None,
            invoice_date=_day(first.get("Date")),
            due_date=_day(ledger_entry.get("DueDate")),
            amount_excl_vat=excl,
            vat=tax,
            amount_incl_vat=excl + tax,
            currency=first.get("Currency") or "NOK",
            payment_status=PaymentStatus.PAID if paid else PaymentStatus.OUTSTANDING,
            amount_outstanding=Decimal(0) if paid else None,
            source_invoice_id=None if cost else str(invoice_no) if invoice_no else None,
        ))
    return actuals
