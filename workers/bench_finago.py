"""The benchmark's 24SevenOffice phases (``python -m workers.bench --only finago``), mixed into ``Bench``.

24SevenOffice counts every SOAP request against 7200 per identity and hour (the client paces itself to
``FinagoSettings.max_calls_per_hour``, 7000 by default), so what matters is calls, not seconds:

1. ``finago-calls``: calls per invoice, from the emulator's per-operation counters (``operation_counts``),
   for a batch of invoices with all-new customers and projects and a batch with repeat customers and projects
   (``bulk_invoices(..., repeat_customers=False/True)``). Session and cached reference reads (Login, HasSession,
   products, categories, project statuses) are counted apart as one-time calls. From these and the sweep's
   calls: the invoices per hour one identity sustains under the hourly budget, the arithmetic printed.
2. ``finago-throughput``: like the Tripletex throughput run (invoices/s, worker RSS) for a 24SevenOffice
   office, client pacing off (``--finago-calls-per-hour``), so it measures the stack, not the budget; the
   budget's own ceiling is printed beside it.
3. ``finago-sweep``: ``--open`` open invoices (the ones synced above, topped up with invoiced orders and
   their ledger entries cloned straight into the emulator's state and tracked with ``Store.bulk_track``),
   ``--paid`` of them paid, then ONE PaymentSweep workflow; its SOAP calls from the counters (target <= 15).
3b. ``finago-sweep-settled``: ``--settled`` settled invoices added inside the window before the sweep's cursor,
   then one sweep: it reads the ledger changed since its cursor, so its calls do not grow with them.

The 24SevenOffice office is a second office in the same office file, served by the same worker, Qondor
emulator and Temporal dev server as the Tripletex one; its customers carry no External Reference (that field
holds the 24SevenOffice company id the sync writes back).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from accounting.engine import SWEEP_CURSOR
from accounting.finago.adapter import REFERENCE_TTL_SECONDS, SWEEP_CHUNK_DAYS
from accounting.finago.emulator import DEPARTMENT_ID, MISC_PRODUCT_ID, FinagoState, invoicing, ledger
from accounting.finago.settings import FinagoSettings
from domain.config import AccountingSystem
from domain.qondor import QueueStatus
from domain.sync import WORKFLOW_QUEUE, OfficeRunInput, SweepResult, invoice_workflow_id
from emulators.qondor.sample import bulk_invoices, without_customer_references

if TYPE_CHECKING:
    from workers.bench import Bench

FINAGO_OFFICE_ID = 8
FINAGO_SYSTEM = AccountingSystem.FINAGO.value
HOURLY_LIMIT = 7200
"""24SevenOffice's requests per identity and clock hour (beyond it the identity is quarantined to the hour's end)."""
ONE_TIME_OPERATIONS = frozenset({
    "Authenticate.Login", "Authenticate.HasSession", "ProductService.GetProducts", "ProductService.GetCategories",
    "ProjectService.GetProjectStatuses",
})
"""The session and the reference data the adapter caches (REFERENCE_TTL_SECONDS): not per invoice."""
REFERENCE_READS = 3
"""GetProducts + GetCategories + GetProjectStatuses: what one refresh of the cached reference data costs."""
PRODUCTION_PACING: int = FinagoSettings.model_fields["max_calls_per_hour"].default
"""The client's own pacing budget in production (``FinagoSettings.max_calls_per_hour`` default)."""
UNPACED_CALLS_PER_HOUR = 10**9
"""``max_calls_per_hour`` that makes the client's pacer a no-op (the setting must be positive)."""

# Qondor ids of the 24SevenOffice office (one Qondor emulator holds both offices, so the ranges must not meet
# the Tripletex ones below 100,000; project numbers are "8" + the project id modulo 100,000).
FINAGO_NEW_START = 100_000
FINAGO_REPEAT_START = 110_000
FINAGO_THROUGHPUT_START = 120_000
FINAGO_SWEEP_START = 2_000_000  # store rows only (no Qondor records)
FINAGO_SETTLED_START = 3_000_000  # references of the settled orders the sweep-settled phase adds
WARM_UP = 5  # bulk_invoices(repeat_customers=True) cycles through 5 customers and projects


class FinagoPhases:
    """The 24SevenOffice phases; ``Bench`` provides the stack (``self.finago`` is the emulator's state)."""

    finago: FinagoState

    # --- helpers ---------------------------------------------------------------------------------

    def finago_mark(self) -> Counter[str]:
        with self.finago.lock:
            return Counter(self.finago.operation_counts)

    def finago_since(self, mark: Counter[str]) -> Counter[str]:
        with self.finago.lock:
            now = Counter(self.finago.operation_counts)
        return Counter({k: n - mark.get(k, 0) for k, n in now.items() if n - mark.get(k, 0) > 0})

    @staticmethod
    def split_one_time(counts: Counter[str]) -> tuple[Counter[str], Counter[str]]:
        """(per-invoice calls, one-time calls)."""
        one = Counter({k: n for k, n in counts.items() if k in ONE_TIME_OPERATIONS})
        return counts - one, one

    def finago_bulk(self: Bench, n: int, start_id: int, *, repeat: bool, all_kinds: bool = False) -> dict[str, Any]:
        doc = bulk_invoices(FINAGO_OFFICE_ID, n, start_id, repeat, **({"kinds": self.kinds} if all_kinds else {}))
        return without_customer_references(doc)

    async def _finago_batch(self: Bench, doc: dict[str, Any], timeout: float = 120) -> tuple[Counter[str], list[int]]:
        """Queue a seed document's invoices at once, wait until all are final; the SOAP calls they made."""
        mark = self.finago_mark()
        ids = self.qondor.add_invoices(doc)
        self.synced += ids
        status = await self.wait_final(ids, timeout)
        await asyncio.sleep(0.3)  # nothing else should follow; let a straggler show up in the counters
        return self.finago_since(mark), [i for i in ids if status[i] not in (QueueStatus.PROCESSED, QueueStatus.PAID)]

    # --- 1. calls per invoice --------------------------------------------------------------------

    async def phase_finago_calls(self: Bench) -> None:
        n_new, n_repeat = self.args.finago_batch, self.args.finago_batch
        print(f"24SevenOffice calls per invoice: {n_new} invoices with new customers and projects, then "
              f"{WARM_UP} warm-up and {n_repeat} invoices for repeat customers and projects ...", flush=True)
        new_counts, new_bad = await self._finago_batch(self.finago_bulk(n_new, FINAGO_NEW_START, repeat=False))
        repeat_doc = self.finago_bulk(WARM_UP + n_repeat, FINAGO_REPEAT_START, repeat=True)
        warm_doc = {**repeat_doc, "invoices": repeat_doc["invoices"][:WARM_UP]}
        warm_counts, warm_bad = await self._finago_batch(warm_doc)
        repeat_counts, repeat_bad = await self._finago_batch({"invoices": repeat_doc["invoices"][WARM_UP:]})

        new_per, new_once = self.split_one_time(new_counts)
        repeat_per, repeat_once = self.split_one_time(repeat_counts)
        once = new_once + self.split_one_time(warm_counts)[1] + repeat_once
        new_calls, repeat_calls = new_per.total() / n_new, repeat_per.total() / n_repeat
        failed = new_bad + warm_bad + repeat_bad
        self.report.figures["finago_calls"] = {
            "new_batch": n_new, "new_per_invoice": round(new_calls, 2), "new_detail": dict(new_per),
            "repeat_batch": n_repeat, "repeat_per_invoice": round(repeat_calls, 2), "repeat_detail": dict(repeat_per),
            "warm_up_detail": dict(warm_counts), "one_time": once.total(), "one_time_detail": dict(once),
            "logins": self.finago.login_count, "not_processed": failed,
        }
        self.report.add("24SevenOffice calls, new customer+project", f"{new_calls:.2f}", "<= 5",
                        new_calls <= 5 and not new_bad, note=f"per invoice over {n_new}: {_per(new_per, n_new)}")
        self.report.add("24SevenOffice calls, repeat customer+project", f"{repeat_calls:.2f}", "<= 2",
                        repeat_calls <= 2 and not repeat_bad,
                        note=f"per invoice over {n_repeat}: {_per(repeat_per, n_repeat)}")
        self.report.add("  one-time calls (session + reference data)", str(once.total()),
                        note=_detail(once) + f"; references re-read every {REFERENCE_TTL_SECONDS:.0f} s")
        print(f"  new {new_calls:.2f}/invoice ({_detail(new_per)}); repeat {repeat_calls:.2f}/invoice "
              f"({_detail(repeat_per)}); one-time {once.total()} ({_detail(once)}); not processed {failed}",
              flush=True)
        if new_calls > 5 or repeat_calls > 2:
            self.report.notes.append(_calls_note(new_per, n_new, repeat_per, n_repeat))
        stampede = _stampede_note(once, n_new)
        if stampede:
            self.report.notes.append(stampede)

    # --- 2. throughput ---------------------------------------------------------------------------

    async def phase_finago_throughput(self: Bench) -> None:
        n = self.args.finago_invoices
        figures = await self.throughput_rounds(
            "24SevenOffice", FINAGO_OFFICE_ID,
            lambda first: self.finago_bulk(n, first, repeat=not self.args.new_customers, all_kinds=True),
            FINAGO_THROUGHPUT_START, n, self.finago_mark, lambda mark: self.finago_since(mark).total())
        self.report.figures["finago_throughput"] = figures
        per_invoice = figures.get("accounting_calls_per_invoice")
        if per_invoice:
            budget = PRODUCTION_PACING
            paced = budget / 3600 / per_invoice
            figures["budget_paced_ceiling_invoices_per_second"] = round(paced, 3)
            self.report.add("  ceiling under the hourly budget", f"{paced:.2f} inv/s per identity",
                            note=f"{budget} calls/h / 3600 / {per_invoice:.2f} calls per invoice of this mix; this run "
                                 + ("unpaced" if not self.args.finago_calls_per_hour
                                    else f"paced at {self.args.finago_calls_per_hour} calls/h"))

    # --- 3. payment sweep ------------------------------------------------------------------------

    async def phase_finago_sweep(self: Bench) -> None:
        assert self.store is not None
        target, paid_wanted = self.args.open, self.args.paid
        real = self.store.open_invoices(FINAGO_OFFICE_ID, FINAGO_SYSTEM)
        fill = max(0, target - len(real))
        print(f"24SevenOffice sweep: {len(real)} synced open invoices + {fill} seeded = {len(real) + fill} open; "
              f"paying {paid_wanted} ...", flush=True)
        t_seed = time.monotonic()
        seeded = self._seed_finago_orders(fill)
        self.store.bulk_track(FINAGO_OFFICE_ID, FINAGO_SYSTEM, [
            {"qondor_invoice_id": FINAGO_SWEEP_START + k,
             "workflow_id": invoice_workflow_id(FINAGO_OFFICE_ID, FINAGO_SWEEP_START + k),
             "invoice_date": order["DateOrdered"].date(),
             "accounting_invoice_id": str(order["InvoiceId"]) if order.get("InvoiceId") else None,
             "accounting_order_id": str(order["OrderId"]), "amount": order["OrderTotalIncVat"]}
            for k, order in enumerate(seeded)
        ])
        open_now = len(self.store.open_invoices(FINAGO_OFFICE_ID, FINAGO_SYSTEM))

        real_paid = [t for t in real if t.accounting_order_id][: paid_wanted // 2]
        # Seeded offers stay unpaid: an offer invoiced since the last sweep is reported to Qondor (SetAsProcessed
        # with the invoice number), and seeded items have no Qondor record. The real offers take that path.
        invoiced = [o for o in seeded if o.get("InvoiceId")]
        step = max(1, len(invoiced) // max(1, paid_wanted - len(real_paid)))
        seeded_paid = invoiced[::step][: paid_wanted - len(real_paid)]
        with self.finago.lock:
            index = _ledger_index(self.finago)
            orders = [self.finago.get("orders", int(t.accounting_order_id or 0)) for t in real_paid]
            for order in [o for o in orders if o is not None] + seeded_paid:
                _pay(self.finago, order, index)
        paid = len(real_paid) + len(seeded_paid)
        offers_paid = sum(1 for t in real_paid if not t.accounting_invoice_id)
        seed_seconds = time.monotonic() - t_seed

        mark = self.finago_mark()
        t0 = time.monotonic()
        result: SweepResult = await self.client.execute_workflow(
            "PaymentSweep",
            OfficeRunInput(office_id=FINAGO_OFFICE_ID, accounting_system=AccountingSystem.FINAGO),
            id=f"bench-sweep-{FINAGO_OFFICE_ID}-{uuid.uuid4().hex[:8]}",
            task_queue=WORKFLOW_QUEUE,
            result_type=SweepResult,
            execution_timeout=timedelta(minutes=10),
        )
        sweep_seconds = time.monotonic() - t0
        calls = self.finago_since(mark)
        per, once = self.split_one_time(calls)  # a cold worker's Login (sweep-only runs)
        n_calls = per.total()

        reported = 0
        if real_paid:  # the real workflows got the signal: they report Paid to Qondor
            ids = [t.qondor_invoice_id for t in real_paid]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                reported = sum(1 for s in self.statuses(ids).values() if s == QueueStatus.PAID)
                if reported == len(ids):
                    break
                await asyncio.sleep(0.2)
        lookback = self.config.office(FINAGO_OFFICE_ID).finago.invoice_lookback_days  # type: ignore[union-attr]
        self.report.figures["finago_sweep"] = {
            "open_invoices": open_now, "open_in_sweep": result.open_invoices, "synced_open": len(real),
            "seeded": fill, "seeded_offers": sum(1 for o in seeded if not o.get("InvoiceId")), "paid": paid,
            "paid_real": len(real_paid), "paid_real_offers": offers_paid, "calls": n_calls,
            "one_time_calls": dict(once), "calls_detail": dict(per), "pages": result.pages,
            "found_paid": result.paid, "signalled": result.signalled, "real_reported_paid_to_qondor": reported,
            "lookback_days": lookback, "chunk_days": SWEEP_CHUNK_DAYS,
            "sweep_seconds": round(sweep_seconds, 2), "seed_seconds": round(seed_seconds, 2),
        }
        ok = n_calls <= 15 and result.paid >= paid and reported == len(real_paid)
        self.report.add(f"24SevenOffice payment sweep calls ({result.open_invoices} open)", str(n_calls), "<= 15", ok,
                        note=(f"+{once.total()} one-time; " if once else "") + f"{_detail(per)}; "
                             f"{result.paid}/{paid} paid found in {sweep_seconds:.1f} s, {result.signalled} signalled; "
                             f"{reported}/{len(real_paid)} real syncs set Paid in Qondor")
        print(f"  {n_calls} SOAP calls ({_detail(per)}), {result.paid}/{paid} paid found, {sweep_seconds:.1f} s; "
              f"{reported}/{len(real_paid)} real syncs reported Paid; seeding took {seed_seconds:.1f} s", flush=True)

    async def phase_finago_sweep_settled(self: Bench) -> None:
        """3b. One more sweep after ``--settled`` settled invoices (and their ledger entries, closed) were added
        inside the look-back window before the sweep's cursor: it reads the ledger changed since the cursor, so
        its calls (and the entries it reads) do not grow with them."""
        assert self.store is not None
        settled = self.args.settled
        if self.store.get_cursor(FINAGO_OFFICE_ID, f"{SWEEP_CURSOR}:{FINAGO_SYSTEM}") is None:
            await self.run_sweep(FINAGO_OFFICE_ID, AccountingSystem.FINAGO)  # the office's first sweep sets it
        print(f"24SevenOffice sweep with {settled} settled invoices inside the window ...", flush=True)
        t_seed = time.monotonic()
        made = self._seed_finago_orders(settled, start=FINAGO_SETTLED_START, offers=False)
        with self.finago.lock:
            numbers = {str(o["InvoiceId"]) for o in made if o.get("InvoiceId")}
            for entry in self.finago.transactions:
                if entry.get("InvoiceNo") in numbers:
                    entry["Open"] = False
        seed_seconds = time.monotonic() - t_seed
        mark = self.finago_mark()
        t0 = time.monotonic()
        result = await self.run_sweep(FINAGO_OFFICE_ID, AccountingSystem.FINAGO)
        sweep_seconds = time.monotonic() - t0
        per, _ = self.split_one_time(self.finago_since(mark))  # a cold worker's Login apart
        n_calls = per.total()
        lookback = self.config.office(FINAGO_OFFICE_ID).finago.invoice_lookback_days  # type: ignore[union-attr]
        window_calls = -(-lookback // SWEEP_CHUNK_DAYS) + (1 if per.get("InvoiceService.GetInvoices") else 0)
        self.report.figures["finago_sweep_settled"] = {
            "settled_in_window": settled, "open_invoices": result.open_invoices, "calls": n_calls,
            "calls_detail": dict(per), "window_calls_without_cursor": window_calls,
            "sweep_seconds": round(sweep_seconds, 2), "seed_seconds": round(seed_seconds, 2),
        }
        self.report.add(f"24SevenOffice sweep calls ({result.open_invoices} open, {settled} settled in window)",
                        str(n_calls), "<= 2", n_calls <= 2,
                        note=f"{_detail(per)}; since the cursor (without: {window_calls} calls over the whole "
                             f"window, every settled entry read); {sweep_seconds:.1f} s")
        print(f"  {n_calls} SOAP calls ({_detail(per)}), {sweep_seconds:.1f} s", flush=True)

    def _seed_finago_orders(self: Bench, n: int, start: int = FINAGO_SWEEP_START,
                            offers: bool = True) -> list[dict[str, Any]]:
        """``n`` open orders in the emulator, fast: clones of one order the emulator invoiced through its own
        rules (with its voucher's ledger entries), numbered on and dated over the last 150 days, so the ledger
        looks like an office with that many unpaid invoices. The newest 1 % stay offers not yet invoiced (what
        order mode leaves between sweeps), so the sweep also reads which offers were invoiced (GetInvoices)."""
        state = self.finago
        if n == 0:
            return []
        with state.lock:
            customer = next((c for c in state.all("companies") if c.get("ExternalId") == "bench"), None) or state.put(
                "companies", {"Name": "Benchmark AS", "Type": "Business", "OrganizationNumber": "811111112",
                              "ExternalId": "bench"})
            template = invoicing.save_order(state, {
                "CustomerId": customer["Id"], "DepartmentId": DEPARTMENT_ID, "OrderStatus": "Invoiced",
                "InvoiceRows": {"InvoiceRow": [{"ProductId": MISC_PRODUCT_ID, "Price": Decimal(1000),
                                                "Quantity": Decimal(1)}]}})
            voucher = [dict(t) for t in state.transactions if t.get("InvoiceNo") == str(template["InvoiceId"])]
            now = state.now()
            offers_from = n - max(1, n // 100) if offers else n
            made, entries = [], []
            for k in range(n):
                day = (now - timedelta(days=150 - (k * 150) // n)).replace(hour=0, minute=0, second=0)
                order = {**template, "OrderId": state.new_id("orders", 1_001), "DateOrdered": day, "DateChanged": day,
                         "_registered": day, "ReferenceNumber": str(start + k),
                         "InvoiceRows": {"InvoiceRow": [dict(r) for r in template["InvoiceRows"]["InvoiceRow"]]}}
                if k >= offers_from:
                    order.update(OrderStatus="Offer", InvoiceId=None, DateInvoiced=None)
                else:
                    number = state.next_number("invoice_no", invoicing.INVOICE_NUMBER_START)
                    order.update(InvoiceId=number, DateInvoiced=day)
                    transaction_no = state.next_number("transaction_no", 10_001)
                    for entry in voucher:
                        entries.append({
                            **entry, "Id": str(uuid.uuid4()), "TransactionNo": transaction_no,
                            "StampNo": transaction_no,
                            "Date": day, "Period": day.month, "PeriodDate": day.date(), "InvoiceNo": str(number),
                            "DueDate": day + timedelta(days=14) if entry["DueDate"] else None,
                            "RegistrationDate": day, "DateChanged": day,
                            "_open_item": str(number) if entry.get("_open_item") else None})
                state.tables["orders"][order["OrderId"]] = order
                made.append(order)
            state.transactions.extend(entries)
            return made

    # --- the hourly budget -----------------------------------------------------------------------

    def finago_budget(self: Bench) -> None:
        """Invoices per hour one identity sustains: what is left of the hour after the sweeps, the reference
        refreshes and a login, divided by the calls per invoice; against 24SevenOffice's 7200 and against the
        client's own pacing (the production ``max_calls_per_hour``). Needs the calls phase; uses the sweep's
        calls when that phase ran."""
        calls = self.report.figures.get("finago_calls")
        if not calls:
            return
        sweep = self.report.figures.get("finago_sweep")
        minutes = self.config.office(FINAGO_OFFICE_ID).payment_sweep_minutes
        sweeps_per_hour = 60 / minutes
        sweep_calls = sweep["calls"] if sweep else None
        sweep_hour = sweeps_per_hour * sweep_calls if sweep_calls is not None else 0.0
        references = 3600 / REFERENCE_TTL_SECONDS * REFERENCE_READS
        sessions = 1.0  # at most one Login an hour (a session lives for hours; HasSession only after a fault)
        overhead = sweep_hour + references + sessions
        repeat_per, new_per = calls["repeat_per_invoice"], calls["new_per_invoice"]
        figures: dict[str, Any] = {"sweep_minutes": minutes, "sweep_calls": sweep_calls,
                                   "sweep_calls_per_hour": sweep_hour, "reference_calls_per_hour": references,
                                   "login_calls_per_hour": sessions, "overhead_calls_per_hour": overhead}
        sweep_text = (f"{sweeps_per_hour:g} sweeps/h (every {minutes:g} min) x {sweep_calls} calls = {sweep_hour:g}"
                      if sweep_calls is not None else "sweep not measured: 0")
        print("24SevenOffice hourly budget, one identity:", flush=True)
        print(f"  overhead/h = {sweep_text} + reference data {3600 / REFERENCE_TTL_SECONDS:g} x {REFERENCE_READS} = "
              f"{references:g} + Login {sessions:g} = {overhead:g} calls", flush=True)
        for key, budget, label in (("limit", HOURLY_LIMIT, "24SevenOffice's limit"),
                                   ("pacing", PRODUCTION_PACING, "the client's pacing (max_calls_per_hour default)")):
            left = budget - overhead
            repeat = left / repeat_per if repeat_per else None
            new = left / new_per if new_per else None
            figures[key] = {"budget": budget, "left": left, "repeat_invoices_per_hour": _i(repeat),
                            "new_invoices_per_hour": _i(new)}
            arithmetic = (f"({budget} - {overhead:g}) = {left:g} calls; / {repeat_per} repeat = {_i(repeat)} inv/h; "
                          f"/ {new_per} new = {_i(new)} inv/h")
            print(f"  {label} {budget}: {arithmetic}", flush=True)
            self.report.add(f"24SevenOffice invoices/hour, {budget} calls/h", f"{_i(repeat)} repeat / {_i(new)} new",
                            note=f"{label}: {arithmetic}")
        self.report.figures["finago_budget"] = figures
        if sweep_calls is None:
            self.report.notes.append("24SevenOffice budget computed without the sweep's calls (finago-sweep not run).")


def finago_duplicates(state: FinagoState) -> dict[str, int]:
    """What a double write would leave in 24SevenOffice: two companies with one ExternalId (a Qondor customer) or
    one consumer e-mail, or two orders with one
    ReferenceNumber (a Qondor invoice id). The benchmark's own seeded orders share no reference."""
    with state.lock:
        companies = list(state.tables["companies"].values())
        orders = list(state.tables["orders"].values())
    keys = Counter(f"company ExternalId {c['ExternalId']}" for c in companies if c.get("ExternalId"))
    keys += Counter(f"consumer {email}" for c in companies if c.get("Type") == "Consumer"
                    for email in {e.get("Value") for e in (c.get("EmailAddresses") or {}).values()
                                  if isinstance(e, dict) and e.get("Value")})  # one e-mail under several types
    keys += Counter(f"order ReferenceNumber {o['ReferenceNumber']}" for o in orders if o.get("ReferenceNumber"))
    return {k: n for k, n in keys.items() if n > 1}


def _ledger_index(state: FinagoState) -> dict[str, list[dict[str, Any]]]:
    """Ledger entries by invoice number (one pass instead of one scan per payment)."""
    index: dict[str, list[dict[str, Any]]] = {}
    for entry in state.transactions:
        if entry.get("InvoiceNo"):
            index.setdefault(str(entry["InvoiceNo"]), []).append(entry)
    return index


def _pay(state: FinagoState, order: dict[str, Any], index: dict[str, list[dict[str, Any]]]) -> None:
    """What finance does: invoice the order if it is still an offer, then pay it in full, by the emulator's own
    rules. Those rules scan every transaction for the invoice's group (twice per payment), so with 10,000 seeded
    invoices each step runs on a list holding only that invoice's entries, and what it posted is appended to
    the real ledger afterwards."""
    everything = state.transactions
    try:
        if not order.get("InvoiceId"):
            state.transactions = []
            invoicing.invoice_order(state, order["OrderId"])
            index[str(order["InvoiceId"])] = list(state.transactions)
            everything.extend(state.transactions)
        group = index[str(order["InvoiceId"])]
        entry = next(t for t in group if t["AccountNo"] == ledger.CUSTOMER_LEDGER)
        state.transactions = list(group)
        ledger.register_payment(state, int(order["InvoiceId"]), entry["Amount"], None)
        added = state.transactions[len(group):]
        group.extend(added)
        everything.extend(added)
    finally:
        state.transactions = everything


def _detail(counts: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _per(counts: Counter[str], n: int) -> str:
    return ", ".join(f"{k.split('.', 1)[1]} {v / n:.2f}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _i(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _calls_note(new: Counter[str], n_new: int, repeat: Counter[str], n_repeat: int) -> str:
    text = (f"24SevenOffice calls over target: new customer+project per invoice {_per(new, n_new)}; "
            f"repeat per invoice {_per(repeat, n_repeat)}.")
    if new.get("CompanyService.GetCompanies", 0) >= 2 * n_new:
        text += (" GetCompanies runs twice per new business customer: FinagoAdapter.customer's find looks the "
                 "company up by organisation number and, when that finds none, again by ExternalId (the Qondor "
                 "customer id, for a company whose write-back was lost); a company this sync creates carries the "
                 "organisation number, so the ExternalId lookup only matters for customers without one.")
    return text


def _stampede_note(once: Counter[str], invoices: int) -> str | None:
    """The reference data is read once per cold invoice running at the same time, not once per office."""
    read = Counter({k: n for k, n in once.items() if k.startswith(("ProductService.", "ProjectService."))})
    reads = read.total()
    if reads <= REFERENCE_READS:
        return None
    return (f"24SevenOffice reference reads not shared: {reads} reads ({_detail(read)}) for {invoices} invoices "
            f"arriving together with a cold cache, where one refresh is {REFERENCE_READS}. FinagoAdapter._catalog "
            "and _status_id have no single-flight lock, so every concurrent activity that finds the cache empty or "
            f"expired (every {REFERENCE_TTL_SECONDS:.0f} s) reads it again; the budget below assumes one refresh.")
