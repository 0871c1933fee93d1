"""``create_app``: the Tripletex emulator as a Starlette ASGI app (in-process via httpx, or on uvicorn)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from accounting.tripletex.emulator import admin, api, ledger_api
from accounting.tripletex.emulator.errors import ApiError
from accounting.tripletex.emulator.gateway import ADMIN_PREFIX, Gateway, current_request_id
from accounting.tripletex.emulator.state import TripletexState
from emulators.faults import FaultMiddleware

_CODES = {400: 4000, 401: 3000, 403: 9000, 404: 6000, 405: 4000, 409: 7000, 422: 18000, 500: 1000}


def _fault_body(status: int, message: str) -> dict[str, Any]:
    """Injected faults answer with Tripletex's error envelope (code per status, request id of the request)."""
    return ApiError(status, _CODES.get(status), message).body(current_request_id.get() or "")


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or current_request_id.get() or ""


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(_request_id(request)), exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = ApiError(exc.status_code, _CODES.get(exc.status_code, 4000), exc.detail or "Not found.")
    return JSONResponse(error.body(_request_id(request)), exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    error = ApiError(500, 1000, "Unexpected error in the emulator.", developer_message=f"{type(exc).__name__}: {exc}")
    return JSONResponse(error.body(_request_id(request)), 500)


def create_app(state: TripletexState | None = None) -> Starlette:
    """The emulator; its state is ``app.state.tripletex`` (a fresh default company when not given)."""
    state = state or TripletexState()
    app = Starlette(
        routes=[*api.routes(), *ledger_api.routes(), *admin.routes(state)],
        middleware=[
            Middleware(Gateway, state=state),
            Middleware(FaultMiddleware, injector=state.faults, exempt_prefixes=(ADMIN_PREFIX,), error_body=_fault_body),
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.tripletex = state
    return app
