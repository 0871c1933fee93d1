"""``/_admin/...``: seed, inspect and steer the emulator (no auth, never rate limited, never faulted).

==============================  =====================================================================
``POST /_admin/seed``           seed document (see ``seed.py``) -> 201 ``{"created": {key: [ids]}}``
``GET /_admin/state``           every entity, incl. bookkeeping keys (``_sent``, ``_payments``)
``GET /_admin/requests``        ``{"total", "counts": {"GET /v2/invoice": n, ...}, "requests": [...]}``
``POST /_admin/requests/clear`` empty the request log -> 204
``POST|GET|DELETE /_admin/faults``  fault rules (see ``emulators/faults.py``)
``POST /_admin/expire-sessions``    every session token dies -> ``{"expired": n}``
``POST /_admin/rate-limit``     ``{"limit": 10, "period_seconds": 1.0, "include_reset_on_429": false}``;
                                ``"limit": null`` switches rate limiting off
``POST /_admin/clock``          ``{"today": "2025-03-01"}`` pins the emulator's date (null: real date)
``POST /_admin/reset``          back to the defaults -> 204
==============================  =====================================================================
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accounting.tripletex.emulator.gateway import normalised_path
from accounting.tripletex.emulator.render import to_json
from accounting.tripletex.emulator.seed import apply_seed
from accounting.tripletex.emulator.state import RateLimitConfig, TripletexState
from emulators.faults import fault_admin_routes


def _state(request: Request) -> TripletexState:
    return request.app.state.tripletex


async def _json(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def snapshot(state: TripletexState) -> dict[str, Any]:
    """The whole company as JSON (what ``GET /_admin/state`` returns)."""
    with state.lock:
        return to_json({
            "today": state.today().isoformat(),
            "company": state.company,
            "bankAccount": state.company_has_bank_account,
            "entities": {table: sorted(rows.values(), key=lambda e: e["id"]) for table, rows in state.tables.items()},
            "entitlements": {str(k): sorted(v) for k, v in state.entitlements.items()},
            "sessions": [{"id": s.id, "employeeId": s.employee_id, "expirationDate": s.expiration_date.isoformat()}
                         for s in state.sessions.values()],
            "rateLimit": vars(state.rate_limit),
        })


def request_summary(state: TripletexState) -> dict[str, Any]:
    """The request log and counts per ``METHOD /normalised/path``."""
    with state.lock:
        records = list(state.requests)
    counts = Counter(f"{r.method} {normalised_path(r.path)}" for r in records)
    return {"total": len(records), "counts": dict(counts), "requests": [r.to_json() for r in records]}


async def seed(request: Request) -> Response:
    return JSONResponse({"created": apply_seed(_state(request), await _json(request))}, 201)


async def state_view(request: Request) -> Response:
    return JSONResponse(snapshot(_state(request)))


async def requests_view(request: Request) -> Response:
    return JSONResponse(request_summary(_state(request)))


async def requests_clear(request: Request) -> Response:
    _state(request).clear_requests()
    return Response(status_code=204)


async def expire_sessions(request: Request) -> Response:
    return JSONResponse({"expired": _state(request).expire_sessions()})


async def rate_limit(request: Request) -> Response:
    doc = await _json(request)
    config = RateLimitConfig(limit=doc.get("limit"), period_seconds=float(doc.get("period_seconds", 60.0)),
                             include_reset_on_429=bool(doc.get("include_reset_on_429", False)))
    _state(request).configure_rate_limit(config)
    return JSONResponse(vars(config))


async def clock(request: Request) -> Response:
    today = (await _json(request)).get("today")
    state = _state(request)
    state.set_today(date.fromisoformat(today) if today else None)
    return JSONResponse({"today": state.today().isoformat()})


async def reset(request: Request) -> Response:
    _state(request).reset()
    return Response(status_code=204)


def routes(state: TripletexState) -> list[Route]:
    return [
        Route("/_admin/seed", seed, methods=["POST"]),
        Route("/_admin/state", state_view, methods=["GET"]),
        Route("/_admin/requests", requests_view, methods=["GET"]),
        Route("/_admin/requests/clear", requests_clear, methods=["POST"]),
        Route("/_admin/expire-sessions", expire_sessions, methods=["POST"]),
        Route("/_admin/rate-limit", rate_limit, methods=["POST"]),
        Route("/_admin/clock", clock, methods=["POST"]),
        Route("/_admin/reset", reset, methods=["POST"]),
        *fault_admin_routes(state.faults),
    ]
