"""Tripletex's reading of actual costs and sales for the cost and sales sync (``domain/actuals.py``); nothing is
written. Called through ``TripletexAdapter.actuals_page``.

**Costs** are supplier invoices (``GET /supplierInvoice``, which the API can only read), each with its voucher's
postings in the same call (``fields`` expands ``voucher(postings(...))``), dated in the window:

* a supplier invoice whose voucher has no ``number`` is a draft (registered, not posted): skipped, ``draft``;
* one whose voucher was reversed (``reverseVoucher`` set) is skipped, ``reversed``; a deleted one is simply
  not listed. Either way the sync removes the actual it wrote before;
* its own posting lines (``row`` >= 1; row 0 holds the system's input-VAT and payables postings) on a
  balance-sheet account (type ASSETS, EQUITY or LIABILITIES) are skipped (``balance-sheet account``), lines
  on a result account without a project are skipped (``no project``);
* the remaining lines give one cost per (supplier invoice, project): amounts are the sums of that project's
  lines in the invoice currency (``amountCurrency`` excl. VAT, ``amountGrossCurrency`` incl. VAT), so a
  supplier invoice split across projects gives one cost per project. Paid when ``outstandingAmount`` is 0;
  what is outstanding is shared between the projects in proportion to their amounts incl. VAT.

**Sales** are customer invoices (``GET /invoice``, which lists charged invoices) linked to projects through
``projectInvoiceDetails`` (``GET /invoice`` has no project filter: the link is read per invoice), one sale per
(invoice, project). An invoice with several projects is shared by the details' amounts. An invoice credited in
full (``isCredited``) and the credit note that credited it give no sale (``credited``): one extra call per page
that holds credit notes asks whether their originals are credited; a partial credit note is a negative sale.
Invoices without a project are skipped (``no project``). Each sale names its invoice (``source_invoice_id``, the
invoice id), so the sync can leave out the invoices the invoice sync booked from Qondor's queue.

**Keys**: ``tripletex:supplierInvoice:{id}:project:{projectId}`` and ``tripletex:invoice:{id}:project:{projectId}``,
from ids Tripletex never changes; a line moved to another project gives another key (and the old one is
removed by the sync).

**Paging**: documents sorted by id, ``from``/``count``; the cursor holds the offset, the last id seen and the
postings per document seen so far, so a page asks for about ``limit`` postings (costs) or ``limit`` invoices
(sales). Each page re-reads ``OVERLAP`` documents before its offset and drops those already seen, so a
document deleted between two pages does not make the next page skip one.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from accounting.tripletex.client import TripletexClient
from domain.actuals import Actual, ActualKind, ActualsPage, ActualsWindow, PaymentStatus

COST_FIELDS = (
    "id,invoiceNumber,invoiceDate,invoiceDueDate,amountCurrency,outstandingAmount,currency(code),supplier(name),"
    "voucher(id,number,description,reverseVoucher(id),postings(row,description,amountCurrency,amountGrossCurrency,"
    "account(number,type),project(id,number)))"
)
SALE_FIELDS = (
    "id,invoiceNumber,invoiceDate,invoiceDueDate,amountCurrency,amountExcludingVatCurrency,amountCurrencyOutstanding,"
    "currency(code),customer(name),isCreditNote,isCredited,creditedInvoice,projectInvoiceDetails(project(id,number),"
    "feeAmountCurrency,markupAmountCurrency,amountOrderLinesAndReinvoicingCurrency,amountTravelReportsAndExpensesCurrency)"
)
DETAIL_AMOUNTS = ("feeAmountCurrency", "markupAmountCurrency", "amountOrderLinesAndReinvoicingCurrency",
                  "amountTravelReportsAndExpensesCurrency")
BALANCE_SHEET_TYPES = frozenset({"ASSETS", "EQUITY", "LIABILITIES"})
OVERLAP = 2
POSTINGS_PER_SUPPLIER_INVOICE = 4.0
"""First guess of the postings per supplier invoice (a line, its VAT, the payables), refined from each page."""
EARLIEST = date(2000, 1, 1)
"""Lower bound of the date range when credited originals are looked up by id (the list call needs a range)."""
ORE = Decimal("0.01")

DRAFT, REVERSED, BALANCE_SHEET, NO_PROJECT, CREDITED = (
    "draft", "reversed", "balance-sheet account", "no project", "credited")


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts; opaque to everyone else (a compact JSON string)."""

    offset: int = 0
    last_id: int | None = None
    per_document: float = 1.0

    def encode(self) -> str:
        return json.dumps({"o": self.offset, "l": self.last_id, "p": round(self.per_document, 3)},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None, per_document: float) -> Cursor:
        if not text:
            return cls(per_document=per_document)
        data = json.loads(text)
        return cls(int(data["o"]), data["l"], float(data["p"]))


async def read_actuals(
    client: TripletexClient, kind: ActualKind, window: ActualsWindow, cursor: str | None, limit: int
) -> ActualsPage:
    """One page of the window's actual costs or sales (see the module docstring)."""
    costs = kind is ActualKind.COST
    position = Cursor.decode(cursor, POSTINGS_PER_SUPPLIER_INVOICE if costs else 1.0)
    count = max(1, round(limit / position.per_document))
    start = max(0, position.offset - OVERLAP) if position.last_id is not None else position.offset
    requested = count + position.offset - start
    date_to = window.end + timedelta(days=1)  # the window's end is inclusive, the API's To exclusive
    if costs:
        page = await client.supplier_invoice_page(date_from=window.start, date_to=date_to, fields=COST_FIELDS,
                                                  start=start, count=requested)
    else:
        page = await client.invoice_page(date_from=window.start, date_to=date_to, fields=SALE_FIELDS, start=start,
                                         count=requested)
    documents = [d for d in page if position.last_id is None or d["id"] > position.last_id]
    skipped: Counter[str] = Counter()
    actuals: list[Actual] = []
    if costs:
        read = sum(len((d.get("voucher") or {}).get("postings") or []) for d in documents)
        for document in documents:
            actuals += costs_of(document, skipped)
    else:
        read = len(documents)
        credited = await _credited_originals(client, documents, date_to)
        for document in documents:
            actuals += sales_of(document, credited, skipped)
    following = None
    if len(page) == requested:
        last_id = max((d["id"] for d in page), default=position.last_id)
        per_document = read / len(documents) if documents and read else position.per_document
        following = Cursor(start + len(page), last_id, max(1.0, per_document)).encode()
    return ActualsPage(actuals=actuals, skipped=dict(skipped), cursor=following, read=read)


# ---------------------------------------------------------------------------------------------- costs


def costs_of(invoice: dict[str, Any], skipped: Counter[str]) -> list[Actual]:
    """The costs of one supplier invoice, one per project; what is left out is counted in ``skipped``."""
    voucher = invoice.get("voucher") or {}
    if not voucher.get("number"):
        skipped[DRAFT] += 1
        return []
    if voucher.get("reverseVoucher"):
        skipped[REVERSED] += 1
        return []
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for posting in voucher.get("postings") or []:
        if (posting.get("row") or 0) < 1:
            continue  # the system's counter-entries (input VAT, payables), not lines of the invoice
        project = posting.get("project") or {}
        if _balance_sheet(posting.get("account") or {}):
            skipped[BALANCE_SHEET] += 1
        elif project.get("id") is None or project.get("number") in (None, ""):
            skipped[NO_PROJECT] += 1
        else:
            lines[project["id"]].append(posting)
    total = _money(invoice.get("amountCurrency"))
    outstanding = _optional_money(invoice.get("outstandingAmount"))
    actuals = []
    for project_id, postings in lines.items():
        excl = sum((_money(p.get("amountCurrency")) for p in postings), Decimal(0))
        incl = sum((_money(p.get("amountGrossCurrency")) for p in postings), Decimal(0))
        share = None
        if outstanding is not None:
            share = outstanding if total == incl or not total else (outstanding * incl / total).quantize(ORE)
        actuals.append(Actual(
            kind=ActualKind.COST,
            external_reference=f"tripletex:supplierInvoice:{invoice['id']}:project:{project_id}",
            project_number=str(postings[0]["project"]["number"]),
            counterparty=(invoice.get("supplier") or {}).get("name") or "",
            document_number=_text(invoice.get("invoiceNumber")),
            description=voucher.get("description") or next((p["description"] for p in postings
                                                            if p.get("description")), None),
            invoice_date=_day(invoice.get("invoiceDate")),
            due_date=_day(invoice.get("invoiceDueDate")),
            amount_excl_vat=excl, vat=incl - excl, amount_incl_vat=incl,
            currency=(invoice.get("currency") or {}).get("code") or "NOK",
            payment_status=_status(outstanding),
            amount_outstanding=share,
        ))
    return actuals


def _balance_sheet(account: dict[str, Any]) -> bool:
    """A balance-sheet account by its type; by its number (NS 4102: 1xxx-2xxx) when the type is not given."""
    if account.get("type"):
        return account["type"] in BALANCE_SHEET_TYPES
    return account.get("number") is not None and int(account["number"]) < 3000


# ---------------------------------------------------------------------------------------------- sales


async def _credited_originals(client: TripletexClient, documents: list[dict[str, Any]], date_to: date) -> set[int]:
    """Of the originals the page's credit notes credit, those credited in full (one call, only when needed)."""
    originals = sorted({d["creditedInvoice"] for d in documents if d.get("isCreditNote") and d.get("creditedInvoice")})
    if not originals:
        return set()
    found = await client.invoices_by_id(originals, date_from=EARLIEST, date_to=date_to, fields="id,isCredited")
    return {f["id"] for f in found if f.get("isCredited")}


def sales_of(invoice: dict[str, Any], credited: set[int], skipped: Counter[str]) -> list[Actual]:
    """The sales of one customer invoice, one per linked project; ``credited``: originals credited in full."""
    if (invoice.get("isCredited") and not invoice.get("isCreditNote")) or (
        invoice.get("isCreditNote") and invoice.get("creditedInvoice") in credited
    ):
        skipped[CREDITED] += 1
        return []
    weights: dict[int, Decimal] = defaultdict(Decimal)
    numbers: dict[int, str] = {}
    for details in invoice.get("projectInvoiceDetails") or []:
        project = details.get("project") or {}
        if project.get("id") is None or project.get("number") in (None, ""):
            continue
        numbers[project["id"]] = str(project["number"])
        weights[project["id"]] += sum((_money(details.get(k)) for k in DETAIL_AMOUNTS), Decimal(0))
    if not numbers:
        skipped[NO_PROJECT] += 1
        return []
    projects = list(numbers)
    shares = [weights[p] for p in projects]
    incl = _money(invoice.get("amountCurrency"))
    excl = _money(invoice.get("amountExcludingVatCurrency"))
    outstanding = _optional_money(invoice.get("amountCurrencyOutstanding"))
    split_incl, split_excl = _split(incl, shares), _split(excl, shares)
    split_outstanding = _split(outstanding, shares) if outstanding is not None else [None] * len(projects)
    return [
        Actual(
            kind=ActualKind.SALE,
            external_reference=f"tripletex:invoice:{invoice['id']}:project:{project_id}",
            project_number=numbers[project_id],
            counterparty=(invoice.get("customer") or {}).get("name") or "",
            document_number=_text(invoice.get("invoiceNumber")),
            invoice_date=_day(invoice.get("invoiceDate")),
            due_date=_day(invoice.get("invoiceDueDate")),
            amount_excl_vat=part_excl, vat=part_incl - part_excl, amount_incl_vat=part_incl,
            currency=(invoice.get("currency") or {}).get("code") or "NOK",
            payment_status=_status(outstanding),
            amount_outstanding=part_outstanding,
            source_invoice_id=str(invoice["id"]),
        )
        for project_id, part_incl, part_excl, part_outstanding in zip(
            projects, split_incl, split_excl, split_outstanding, strict=True)
    ]


def _split(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` shared by ``weights`` to the øre; the last part takes the rounding (equal parts when the weights
    sum to zero)."""
    if len(weights) == 1:
        return [total]
    whole = sum(weights, Decimal(0))
    parts = [(total * w / whole).quantize(ORE) if whole else (total / len(weights)).quantize(ORE)
             for w in weights[:-1]]
    return [*parts, total - sum(parts, Decimal(0))]


# ---------------------------------------------------------------------------------------------- values


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(ORE)


def _optional_money(value: Any) -> Decimal | None:
    return None if value is None else _money(value)


def _status(outstanding: Decimal | None) -> PaymentStatus:
    return PaymentStatus.PAID if outstanding == 0 else PaymentStatus.OUTSTANDING


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
