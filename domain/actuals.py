"""Actual costs and actual sales: what the cost and sales sync reads from an accounting system and writes to
Qondor's Sale and Cost APIs (accounting -> Qondor).

An :class:`Actual` is system-neutral: each adapter turns its own source documents into them (Tripletex:
posted supplier invoices' expense postings with a project, and customer invoices linked to a project;
24SevenOffice: supplier transactions on expense accounts, and revenue transactions). The engine-neutral
sync (``accounting/actuals.py``) matches them to Qondor projects by project number, compares each with what
it last wrote (a fingerprint in the store) and creates, updates or removes the Qondor record.

Actuals never travel in workflow payloads: supplier and customer names can be personal data (a sole
proprietor), and a page of them would bloat histories. Activities read, compare and write them; the workflow
carries only a cursor and counts.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ActualKind(StrEnum):
    COST = "cost"
    SALE = "sale"


class PaymentStatus(StrEnum):
    PAID = "paid"
    OUTSTANDING = "outstanding"


class Actual(BaseModel):
    """One actual cost or sale for one project, as the source system states it now."""

    model_config = ConfigDict(frozen=True)

    kind: ActualKind
    external_reference: str
    """Stable key derived from the source document and the project, never from a LinkId, e.g.
    ``tripletex:supplierInvoice:123:project:45`` or ``24so:transaction:2024-77:project:P-100``. The same
    document on a later run gives the same reference; moved to another project it gives another."""
    project_number: str
    """The accounting system's project number; matched to Qondor's project number."""
    counterparty: str
    """Supplier name (costs) or customer name (sales)."""
    document_number: str | None = None
    """Supplier invoice number / customer invoice number / transaction reference number."""
    description: str | None = None
    invoice_date: date | None = None
    due_date: date | None = None
    amount_excl_vat: Decimal
    vat: Decimal
    amount_incl_vat: Decimal
    currency: str = "NOK"
    payment_status: PaymentStatus = PaymentStatus.OUTSTANDING
    amount_outstanding: Decimal | None = None
    """What is still to pay (incl. VAT), when the system says; 0 when paid."""
    source_invoice_id: str | None = None
    """Sales: the accounting system's id of the customer invoice the sale comes from (Tripletex: the invoice id;
    24SevenOffice: the invoice number, which is its InvoiceId). The sync skips a sale whose invoice the invoice
    sync booked from Qondor's queue (matched against the store's invoice links), because Qondor keeps its own sale
    for every invoice it issues. None: not known (costs), never skipped for that reason."""


class ActualProblem(BaseModel):
    """A source document the adapter could not turn into actuals (e.g. a 24SevenOffice transaction set whose
    amounts do not balance). Reported and counted as failed; never stops the run."""

    source: str
    """Names the document for the person who fixes it (e.g. ``transaction 2024-77``); no personal data."""
    message: str


class ActualsPage(BaseModel):
    """One page read from the accounting system: at most one page of source documents in memory."""

    actuals: list[Actual] = Field(default_factory=list)
    problems: list[ActualProblem] = Field(default_factory=list)
    skipped: dict[str, int] = Field(default_factory=dict)
    """Source items left out on purpose, counted by reason (``draft``, ``balance-sheet account``,
    ``no project``...)."""
    cursor: str | None = None
    """Where the next page starts (opaque to everyone but the adapter); None when this was the last page."""
    read: int = 0
    """Source records read for this page (postings, transactions), for the counts and the benchmark."""


class ActualsWindow(BaseModel):
    """The look-back window of a run: source documents dated ``start`` up to and including ``end``."""

    start: date
    end: date


def amounts_balance(excl_vat: Decimal, vat: Decimal, incl_vat: Decimal) -> bool:
    """Whether excl. VAT + VAT equals incl. VAT to the øre."""
    return (excl_vat + vat).quantize(Decimal("0.01")) == incl_vat.quantize(Decimal("0.01"))
