"""Admin API (``/_admin/…``, no subscription key): seed data, inspect state and requests, steer faults/limits.

Why over HTTP as well as in Python: end-to-end runs and the demo drive an emulator served by uvicorn,
possibly from another process, so everything a test does with ``app.state.qondor`` is also reachable here.
Bodies use the same camelCase JSON as the wire models (docs/qondor-invoice-api.md, "Emulator admin API").
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.faults import FaultInjector
from emulators.qondor.state import NotFoundError, QondorState, SeedError
from emulators.qondor.wire import json_response, loads


async def _body(request: Request) -> Any:
    raw = await request.body()
    return loads(raw) if raw.strip() else None


def _bad(message: str, problems: list[str] | None = None) -> Response:
    return JSONResponse({"error": message, "problems": problems or [message]}, status_code=400)


def admin_routes(state: QondorState, injector: FaultInjector) -> list[Route]:
    """All admin routes except ``/_admin/faults`` (that one comes from the shared fault module)."""

    async def seed(request: Request) -> Response:
        try:
            doc = await _body(request)
        except ValueError as exc:
            return _bad(f"body is not JSON: {exc}")
        if not isinstance(doc, dict):
            return _bad("the seed must be a JSON object with offices/customers/projects/invoices lists")
        try:
            counts = state.seed(doc)
        except SeedError as exc:
            return _bad("seed rejected; nothing was stored", exc.problems)
        return json_response({"seeded": counts})

    async def add_invoices(request: Request) -> Response:
        try:
            doc = await _body(request)
        except ValueError as exc:
            return _bad(f"body is not JSON: {exc}")
        items = [doc] if isinstance(doc, dict) and "invoices" not in doc else doc  # one invoice, a list, or a seed
        if not isinstance(items, list | dict):
            return _bad("send an invoice object, a list of them, or a seed document with an 'invoices' list")
        try:
            ids = state.add_invoices(items)
        except SeedError as exc:
            return _bad("invoices rejected; nothing was stored", exc.problems)
        return json_response({"ids": ids}, 201)

    async def get_state(request: Request) -> Response:
        return json_response(state.snapshot())

    async def get_requests(request: Request) -> Response:
        return json_response(state.request_log())

    async def clear_requests(request: Request) -> Response:
        state.clear_requests()
        return Response(status_code=204)

    async def rate_limit(request: Request) -> Response:
        if request.method == "GET":
            return json_response(state.rate_limit.to_json())
        try:
            doc = await _body(request) or {}
            if not isinstance(doc, dict):
                raise ValueError("send a JSON object")
            unknown = set(doc) - {"enabled", "limit", "callsPerSecond", "windowSeconds"}
            if unknown:
                raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
            limit = doc.get("limit", doc.get("callsPerSecond"))
            window = doc.get("windowSeconds", 1.0 if "callsPerSecond" in doc else None)
            config = state.configure_rate_limit(
                enabled=doc.get("enabled"),
                limit=int(limit) if limit is not None else None,
                window_seconds=float(window) if window is not None else None,
            )
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        return json_response(config.to_json())

    async def repeats(request: Request) -> Response:
        """GET/POST ``{"refuse": bool}``: whether a repeated SetAs* is refused with 400 (see ``configure_repeats``)."""
        if request.method == "POST":
            try:
                doc = await _body(request)
            except ValueError as exc:
                return _bad(f"body is not JSON: {exc}")
            if not isinstance(doc, dict) or set(doc) != {"refuse"} or not isinstance(doc["refuse"], bool):
                return _bad('send {"refuse": true} or {"refuse": false}')
            state.configure_repeats(refuse=doc["refuse"])
        return json_response({"refuse": state.refuse_repeats})

    async def external_reference(request: Request) -> Response:
        """An operator's hand-made link: GET reads, PUT ``{"externalReference": "..."}`` sets (null clears)."""
        try:
            customer_id = int(request.path_params["id"])
        except ValueError:
            return _bad(f"customer id must be an integer, not {request.path_params['id']!r}")
        try:
            if request.method == "PUT":
                doc = await _body(request)
                if not isinstance(doc, dict) or set(doc) != {"externalReference"}:
                    return _bad('send {"externalReference": "<text>"} (null clears it)')
                reference = doc["externalReference"]
                if reference is not None and not isinstance(reference, str):
                    return _bad("externalReference must be a string or null")
                state.set_customer_external_reference(customer_id, reference)
            current = state.customer_external_reference(customer_id)
        except ValueError as exc:
            return _bad(f"body is not JSON: {exc}")
        except NotFoundError as exc:
            return JSONResponse({"error": str(exc), "problems": [str(exc)]}, status_code=404)
        return json_response({"id": customer_id, "externalReference": current})

    async def actuals(request: Request) -> Response:
        """Every stored Sale and Cost (``?projectId=`` for one project's), for inspection."""
        project = request.query_params.get("projectId")
        try:
            project_id = int(project) if project else None
        except ValueError:
            return _bad(f"projectId must be an integer, not {project!r}")
        return json_response({"costs": state.actual_records("Cost", project_id),
                              "sales": state.actual_records("Sale", project_id)})

    async def reset(request: Request) -> Response:
        state.reset()
        injector.clear()
        return Response(status_code=204)

    return [
        Route("/_admin/seed", seed, methods=["POST"]),
        Route("/_admin/invoices", add_invoices, methods=["POST"]),
        Route("/_admin/state", get_state, methods=["GET"]),
        Route("/_admin/requests", get_requests, methods=["GET"]),
        Route("/_admin/requests", clear_requests, methods=["DELETE"]),
        Route("/_admin/rate-limit", rate_limit, methods=["GET", "POST"]),
        Route("/_admin/repeats", repeats, methods=["GET", "POST"]),
        Route("/_admin/customers/{id}/external-reference", external_reference, methods=["GET", "PUT"]),
        Route("/_admin/actuals", actuals, methods=["GET"]),
        Route("/_admin/reset", reset, methods=["POST"]),
    ]
