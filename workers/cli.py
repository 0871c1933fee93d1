"""``qondor-sync``: the command line for the embedded demo, the production worker, the emulators (Qondor and
every accounting system in ``accounting.registry.SYSTEMS``) and the operator verbs (status, resync, list,
sweep, audit, setup), which work the same for an office on any accounting system."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from domain.config import ConfigFileError, load_config

log = logging.getLogger("qondor-sync")

CONFIG_ENV = "QONDOR_SYNC_CONFIG"


def _config_path(args: argparse.Namespace) -> str:
    path = args.config or os.environ.get(CONFIG_ENV)
    if not path:
        raise SystemExit(f"no office file: pass --config or set {CONFIG_ENV}")
    return path


def _stop_on_signals() -> asyncio.Event:
    """SIGTERM (Kubernetes) and SIGINT (Ctrl-C) both ask for a graceful stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _worker(args: argparse.Namespace) -> int:
    from store import Store
    from workers import observability
    from workers.health import start_from_env as start_health
    from workers.setup import setup_offices
    from workers.worker import SyncWorker, WorkerSettings, connect

    # /healthz and /readyz for the probes (QONDOR_SYNC_HEALTH_ADDRESS, workers/health.py): worker only, first,
    # so the port answers while the worker starts; /readyz says "starting" until the worker is attached.
    health = await start_health()
    config = load_config(_config_path(args))
    store = Store.from_env()
    store.migrate()
    # Prometheus metrics (QONDOR_SYNC_METRICS_ADDRESS) and tracing (QONDOR_SYNC_TRACING / OTEL_*): worker only.
    telemetry = observability.start()
    client = await connect(runtime=telemetry.runtime, interceptors=telemetry.interceptors)
    settings = WorkerSettings()
    worker = SyncWorker(client, config, store, settings=settings)
    if health:
        health.readiness = worker.readiness
    stop = _stop_on_signals()
    task = asyncio.create_task(worker.run(stop))
    if not args.no_setup:
        await setup_offices(client, config, settings.task_queues)
    await task
    if health:
        await health.close()
    telemetry.shutdown()
    store.dispose()
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from workers.demo import run_demo

    return await run_demo(once=args.once, ui_port=args.ui_port, invoices=args.invoices)


def _emulator(args: argparse.Namespace) -> int:
    import uvicorn

    from workers.devstack import emulator_app

    url = f"http://{args.host}:{args.port}"
    if args.name == "qondor" and args.seed == "demo":
        from workers.demo import seed_demo_offices

        app = emulator_app("qondor", seed="none")
        seed_demo_offices(app.state.qondor)
    else:
        app = emulator_app(args.name, seed=args.seed, office_id=args.office)
    print(f"{args.name} emulator on {url} (admin: {url}/_admin/state)", flush=True)
    if args.name == "finago":
        print(f"SOAP services at their 24SevenOffice paths, e.g. {url}/authenticate/v001/authenticate.asmx?WSDL")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _codec_server(args: argparse.Namespace) -> int:
    """Serve the codec server (decrypt/encrypt for the Web UI and ``temporal --codec-endpoint``) with the keys
    of the worker's environment and a bearer token (QONDOR_SYNC_CODEC_SERVER_TOKEN, else one for this run)."""
    import uvicorn

    from workers.codec import CodecConfigError, EncryptionCodec, load_keys
    from workers.codec_server import TOKEN_ENV, create_app, new_token

    keys = load_keys()
    if not keys:
        raise CodecConfigError("the codec server needs the payload keys: set QONDOR_SYNC_CODEC_KEYS[_FILE]")
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        token = new_token()
        print(f"{TOKEN_ENV} is not set: this run's bearer token is {token}", flush=True)
    app = create_app(EncryptionCodec(keys), token, args.ui_origin or None)
    url = f"http://{args.host}:{args.port}"
    print(
        f"codec server on {url} (keys: {', '.join(k.key_id for k in keys)}; UI origins: "
        f"{', '.join(args.ui_origin or ['the dev server UI on :8233'])})\n"
        f"  CLI:    temporal workflow show -w <id> --codec-endpoint {url} --codec-auth \"Bearer $TOKEN\"\n"
        f"  Web UI: codec endpoint {url}/t/$TOKEN",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _codec_key(args: argparse.Namespace) -> int:
    """Print a new random AES-256 key as the ``id:base64key`` entry QONDOR_SYNC_CODEC_KEYS[_FILE] holds."""
    from workers.codec import generate_key

    print(generate_key(args.id).entry())
    return 0


async def _status(args: argparse.Namespace) -> int:
    from domain.sync import InvoiceStatus, invoice_workflow_id
    from workers.worker import connect

    client = await connect()
    handle = client.get_workflow_handle(invoice_workflow_id(args.office, args.invoice))
    status = await handle.query("status", result_type=InvoiceStatus)
    print(json.dumps(status.model_dump(mode="json"), indent=2))
    return 0


async def _resync(args: argparse.Namespace) -> int:
    """Signal a running sync; when it has ended, start it again (ensure steps re-run, nothing duplicated)."""
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.service import RPCError

    from domain.sync import invoice_workflow_id
    from workers.worker import configured_queues, connect
    from workflows.starter import start_invoice_sync

    config = load_config(_config_path(args), check_secrets=False)  # only ids and settings are read here
    client = await connect()
    workflow_id = invoice_workflow_id(args.office, args.invoice)
    try:
        await client.get_workflow_handle(workflow_id).signal("resync")
        print(f"resync signalled to {workflow_id}")
    except RPCError:
        await start_invoice_sync(
            client, config.office(args.office), args.invoice, reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            queues=configured_queues(),
        )
        print(f"{workflow_id} had ended; started it again")
    return 0


async def _list(args: argparse.Namespace) -> int:
    from workers.worker import connect

    client = await connect()
    query = "WorkflowType='InvoiceSync'"
    if args.state:
        query += f" AND SyncState='{args.state}'"
    if args.office:
        query += f" AND OfficeId={args.office}"
    if args.system:
        query += f" AND AccountingSystem='{args.system}'"
    print(f"{'workflow id':32} {'status':12} {'system':10} {'sync state':18} kind")
    async for wf in client.list_workflows(query):
        attrs = {k.name: v for k, v in wf.typed_search_attributes}  # type: ignore[attr-defined]
        print(
            f"{wf.id:32} {wf.status.name if wf.status else '':12} {attrs.get('AccountingSystem', ''):10} "
            f"{attrs.get('SyncState', ''):18} {attrs.get('InvoiceKind', '')}"
        )
    return 0


async def _setup(args: argparse.Namespace) -> int:
    """Register the search attributes, start the pollers and upsert the schedules (what a worker does at start)."""
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    from workers.setup import setup_offices
    from workers.worker import configured_queues, connect
    from workflows import search_attributes as sa

    config = load_config(_config_path(args), check_secrets=False)
    client = await connect()
    wanted = {key.name: int(key.indexed_value_type) for key in sa.ALL}  # same numbering as the proto enum
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(search_attributes=wanted, namespace=client.namespace)
    )
    await setup_offices(client, config, configured_queues())
    print(f"search attributes {', '.join(wanted)} registered; {len(config.offices)} office(s) set up")
    return 0


async def _sweep(args: argparse.Namespace) -> int:
    from workers.setup import trigger_sweep
    from workers.worker import connect

    await trigger_sweep(await connect(), args.office)
    print(f"payment sweep of office {args.office} triggered")
    return 0


async def _directory(args: argparse.Namespace) -> int:
    """The customer and project sync of one office: ``--now`` runs it (``--full``: every project), else the
    Schedule and its latest run's counts are shown."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    from domain.sync import DirectoryResult, directory_schedule_id
    from workers.setup import run_directory_now
    from workers.worker import configured_queues, connect

    client = await connect()
    if args.now or args.full:
        config = load_config(_config_path(args), check_secrets=False)
        result = await run_directory_now(client, config.office(args.office), full=args.full, queues=configured_queues())
        _print_directory(result)
        return 1 if result.error else 0
    try:
        described = await client.get_schedule_handle(directory_schedule_id(args.office)).describe()
    except RPCError as exc:
        print(f"office {args.office} has no customer and project schedule ({exc.message}); is customers_projects in "
              "its flows?", file=sys.stderr)
        return 2
    info = described.info
    upcoming = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in info.next_action_times[:3])
    print(f"schedule {described.id}: {info.num_actions} run(s), {info.num_actions_skipped_overlap} skipped "
          f"(overlap); next: {upcoming or 'paused'}")
    for action in reversed(info.recent_actions):
        workflow_id = getattr(action.action, "workflow_id", None)
        if not workflow_id:
            continue
        handle = client.get_workflow_handle(workflow_id, result_type=DirectoryResult)
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            print(f"{workflow_id}: running")
            continue
        print(f"{workflow_id} (started {action.started_at:%Y-%m-%d %H:%M}):")
        _print_directory(await handle.result())
        break
    return 0


async def _actuals(args: argparse.Namespace) -> int:
    """The cost and sales sync: ``--now`` runs it (for ``--office``, else every office with ``costs_sales``) and
    prints its counts (exit 1 if a run stopped); without ``--now`` the latest runs' counts from the audit trail."""
    if (args.date_from is None) != (args.date_to is None) or (args.date_from and args.date_to < args.date_from):
        print("give --from and --to together, --from not after --to", file=sys.stderr)
        return 2
    if not args.now:
        return _last_actuals_runs(args.office, args.limit)
    from domain.config import Flow
    from workers.setup import run_actuals_now
    from workers.worker import configured_queues, connect

    config = load_config(_config_path(args), check_secrets=False)
    chosen = [config.office(args.office)] if args.office else config.offices
    offices = [o for o in chosen if args.office or Flow.COSTS_SALES in o.flows]
    if not offices:
        print("no office has costs_sales in its flows; name one with --office", file=sys.stderr)
        return 2
    client = await connect()
    code = 0
    for office in offices:
        result = await run_actuals_now(client, office, start=args.date_from, end=args.date_to,
                                       queues=configured_queues())
        print(f"office {office.id} ({result.start} .. {result.end}):")
        _print_actuals(result)
        code = 1 if result.error else code
    return code


def _last_actuals_runs(office_id: int | None, limit: int) -> int:
    from domain.sync import ActualsResult
    from store import Store

    store = Store.from_env()
    try:
        entries = store.audit_entries(office_id=office_id, action="actuals-run", limit=limit)
    finally:
        store.dispose()
    if not entries:
        print("no cost and sales sync run recorded" + (f" for office {office_id}" if office_id else ""))
        return 0
    for entry in entries:
        result = ActualsResult.model_validate(entry.detail or {})
        print(f"{entry.at:%Y-%m-%d %H:%M} office {entry.office_id} ({result.start} .. {result.end}), "
              f"{entry.workflow_id}:")
        _print_actuals(result)
    return 0


def _print_actuals(result: object) -> None:
    from domain.sync import ActualsResult

    assert isinstance(result, ActualsResult)
    print(f"  costs: {result.costs.describe()} ({result.costs.read} read)")
    print(f"  sales: {result.sales.describe()} ({result.sales.read} read)")
    for problem in result.problems:
        print(f"  failed: {problem}")
    if result.error:
        print(f"  stopped: {result.error}")


def _print_directory(result: object) -> None:
    from domain.sync import DirectoryResult

    assert isinstance(result, DirectoryResult)
    print(f"  customers: {result.customers.describe()}")
    print(f"  projects:  {result.projects.describe()}")
    for note in result.notes:
        print(f"  note: {note}")
    for problem in result.problems:
        print(f"  failed: {problem}")
    if result.error:
        print(f"  stopped: {result.error}")


async def _reconcile(args: argparse.Namespace) -> int:
    """The reconciliation report of one office and period: a table, and the mismatches as CSV or JSON. Exit 1 when
    there is drift. Workflow states come from Temporal when it answers (else the report says they were not checked)."""
    from accounting.reconcile import run_reconcile
    from store import Store
    from workers.worker import connect

    config = load_config(_config_path(args))
    if args.date_to < args.date_from:
        print("--to is before --from", file=sys.stderr)
        return 2
    try:
        temporal = await connect()
    except Exception as exc:  # no Temporal (or no payload keys) must not stop finance's report: it says what is missing
        print(f"workflow states not checked: {exc}", file=sys.stderr)
        temporal = None
    report, label = await run_reconcile(config, args.office, Store.from_env(), args.date_from, args.date_to, temporal)
    print(report.table(label))
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as out:
            out.write(report.csv())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report.to_json(), out, indent=2, ensure_ascii=False)
    return 1 if report.drift else 0


async def _check(args: argparse.Namespace) -> int:
    """The go-live check: every finding with its fix; exit 1 when something would stop the first sync."""
    from accounting.golive import OfficeTools, blocking, format_findings, golive_check
    from store import Store

    tools = OfficeTools.open(load_config(_config_path(args)), args.office, Store.from_env())
    findings = await golive_check(tools)
    print(format_findings(findings))
    return 1 if blocking(findings) else 0


async def _preview(args: argparse.Namespace) -> int:
    """What the sync would do for the waiting items (or one item); nothing is written anywhere."""
    from accounting.golive import OfficeTools
    from accounting.preview import format_plans, preview
    from store import Store

    tools = OfficeTools.open(load_config(_config_path(args)), args.office, Store.from_env())
    print(format_plans(await preview(tools, args.invoice)))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError

    from store import Store

    store = Store.from_env()
    try:
        entries = store.audit_entries(office_id=args.office, workflow_id=args.workflow, limit=args.limit)
    except DBAPIError as exc:  # most often a database the worker never migrated (a wrong QONDOR_SYNC_DB_URL)
        print(
            f"cannot read the audit trail from {store!r}: {exc.orig}; is QONDOR_SYNC_DB_URL the worker's?",
            file=sys.stderr,
        )
        return 2
    for entry in entries:
        print(
            f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.system:10} {entry.action:12} {entry.entity:10} "
            f"{entry.accounting_id or '':>8}  qondor={entry.qondor_key or ''}  {entry.workflow_id or ''}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qondor-sync", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embedded default: Temporal dev server + emulators + worker, sample synced")
    demo.add_argument("--once", action="store_true", help="exit when every sample invoice reached its final state")
    demo.add_argument("--ui-port", type=int, default=8233)
    demo.add_argument("--invoices", type=int, default=0, help="extra bulk invoices to sync besides the sample")

    worker = sub.add_parser("worker", help="production worker (TEMPORAL_* settings, office file, database)")
    worker.add_argument("--config", help=f"office file (TOML/YAML); default ${CONFIG_ENV}")
    worker.add_argument("--no-setup", action="store_true", help="do not start pollers / upsert schedules")

    from accounting.registry import SYSTEMS
    from workers.devstack import EMULATORS

    emulator = sub.add_parser("emulator", help="run one emulator alone")
    emulator.add_argument("name", choices=EMULATORS)
    emulator.add_argument("--port", type=int, required=True)
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument(
        "--seed",
        choices=["sample", "demo", "none"],
        default="sample",
        help="qondor only: the sample office (--office), or the demo's two offices (2 for Tripletex; 3 for "
        "24SevenOffice, without customer External References); the accounting emulators always start as a "
        "sandbox-like company",
    )
    emulator.add_argument("--office", type=int, default=2, help="qondor --seed sample: the sample office's id")

    codec = sub.add_parser("codec-server", help="decrypt payloads for the Web UI and the temporal CLI (needs the keys)")
    codec.add_argument("--port", type=int, required=True)
    codec.add_argument("--host", default="127.0.0.1")
    codec.add_argument(
        "--ui-origin", action="append", help="origin of the Web UI allowed by CORS (repeatable); default: the dev UI"
    )

    codec_key = sub.add_parser("codec-key", help="print a new payload encryption key (id:base64key)")
    codec_key.add_argument("--id", required=True, help="the key id stored beside each payload, e.g. 2026-08")

    for name, help_text in (("status", "query an invoice's sync"), ("resync", "re-run an invoice's ensure steps")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--office", type=int, required=True)
        cmd.add_argument("--invoice", type=int, required=True)
        if name == "resync":
            cmd.add_argument("--config", help=f"office file; default ${CONFIG_ENV}")

    lister = sub.add_parser("list", help="list invoice syncs (filter by sync state / office)")
    lister.add_argument("--state", help="e.g. needs_attention, failed, awaiting_payment")
    lister.add_argument("--office", type=int)
    lister.add_argument("--system", choices=[spec.name for spec in SYSTEMS.values()], help="accounting system")

    setup = sub.add_parser("setup", help="register search attributes, start pollers, upsert schedules")
    setup.add_argument("--config", help=f"office file; default ${CONFIG_ENV}")

    sweep = sub.add_parser("sweep", help="run an office's payment sweep now")
    sweep.add_argument("--office", type=int, required=True)

    directory = sub.add_parser("directory", help="an office's customer and project sync: its last run, or run it now")
    directory.add_argument("--office", type=int, required=True)
    directory.add_argument("--now", action="store_true", help="run it now and wait for its counts")
    directory.add_argument("--full", action="store_true", help="run it now over every project (ignore changedAfter)")
    directory.add_argument("--config", help=f"office file; default ${CONFIG_ENV}")

    from datetime import date as _date

    actuals = sub.add_parser("actuals", help="the cost and sales sync: the latest runs' counts, or run it now")
    actuals.add_argument("--office", type=int, help="one office (default: every office; --now: those with costs_sales)")
    actuals.add_argument("--now", action="store_true", help="run it now and wait for its counts")
    actuals.add_argument("--from", dest="date_from", type=_date.fromisoformat, help="window start, YYYY-MM-DD")
    actuals.add_argument("--to", dest="date_to", type=_date.fromisoformat, help="window end, YYYY-MM-DD")
    actuals.add_argument("--limit", type=int, default=5, help="runs shown without --now")
    actuals.add_argument("--config", help=f"office file; default ${CONFIG_ENV}")

    audit = sub.add_parser("audit", help="the audit trail of writes made in external systems")
    audit.add_argument("--office", type=int)
    audit.add_argument("--workflow")
    audit.add_argument("--limit", type=int, default=100)

    from datetime import date

    reconcile = sub.add_parser("reconcile", help="Qondor's queue beside the accounting system for a period: drift")
    reconcile.add_argument("--office", type=int, required=True)
    reconcile.add_argument("--from", dest="date_from", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    reconcile.add_argument("--to", dest="date_to", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    reconcile.add_argument("--csv", help="write the mismatches to this CSV file")
    reconcile.add_argument("--json", help="write the whole report to this JSON file")
    reconcile.add_argument("--config", help=f"office file; default ${CONFIG_ENV}")
    check = sub.add_parser("check", help="go-live check: what would stop an office's first sync (exit 1 if any)")
    check.add_argument("--office", type=int, required=True)
    check.add_argument("--config", help=f"office file; default ${CONFIG_ENV}")
    preview = sub.add_parser("preview", help="what the sync would do for the waiting items; writes nothing")
    preview.add_argument("--office", type=int, required=True)
    preview.add_argument("--invoice", type=int, help="one queue item (waiting or not)")
    preview.add_argument("--config", help=f"office file; default ${CONFIG_ENV}")
    return parser


COMMANDS = {
    "worker": _worker,
    "demo": _demo,
    "status": _status,
    "resync": _resync,
    "list": _list,
    "sweep": _sweep,
    "setup": _setup,
    "directory": _directory,
    "actuals": _actuals,
    "reconcile": _reconcile,
    "check": _check,
    "preview": _preview,
}


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from workers.logs import configure

    # Libraries (alembic, httpx, zeep) quiet unless DEBUG; QONDOR_SYNC_LOG_LEVEL / QONDOR_SYNC_LOG_FORMAT=json.
    configure(verbose=args.verbose)
    try:
        if args.command == "emulator":
            code = _emulator(args)
        elif args.command == "audit":
            code = _audit(args)
        elif args.command == "codec-server":
            code = _codec_server(args)
        elif args.command == "codec-key":
            code = _codec_key(args)
        else:
            code = asyncio.run(COMMANDS[args.command](args))
    except ConfigFileError as exc:
        print(str(exc), file=sys.stderr)
        code = 2
    except Exception as exc:  # the payload keys: missing or malformed (workers/codec.py), reported like the file
        from workers.codec import CodecConfigError

        if not isinstance(exc, CodecConfigError):
            raise
        print(f"payload encryption: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal core runtime can crash the interpreter during its own teardown; our work is done and
    # flushed, so leave without running it (the exit code is what callers and CI read).
    os._exit(code)


if __name__ == "__main__":
    main()
