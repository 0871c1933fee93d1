"""``create_app``: the Qondor emulator as one Starlette app.

Layers, outermost first: the emulated APIM gateway (request log, subscription key, rate limit), the shared
fault middleware (so injected 503/429/latency/drops happen "behind the gateway", like a backend fault), and
the routes. Admin routes bypass the gateway and the faults.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from emulators.faults import FaultInjector, FaultMiddleware, fault_admin_routes
from emulators.qondor.admin import admin_routes
from emulators.qondor.api import api_routes
from emulators.qondor.gateway import QondorGateway
from emulators.qondor.state import QondorState
from emulators.qondor.wire import apim_error, apim_error_body

DEFAULT_SUBSCRIPTION_KEY = "qondor-emulator-key"
"""The only key accepted when ``create_app`` is not given ``subscription_keys``."""


async def _no_route(request: Request, exc: Exception) -> Response:
    """APIM answers unknown operations itself, with its own body (API.md §2 [APIM])."""
    return apim_error(404, "Resource not found")


async def _wrong_method(request: Request, exc: Exception) -> Response:
    return apim_error(405, "Method not allowed")


def create_app(state: QondorState | None = None, *, subscription_keys: Collection[str] | None = None) -> Starlette:
    """A fresh emulator. ``app.state.qondor`` is the :class:`QondorState`, ``app.state.faults`` the injector."""
    state = state if state is not None else QondorState()
    keys = frozenset(subscription_keys) if subscription_keys is not None else frozenset({DEFAULT_SUBSCRIPTION_KEY})
    injector = FaultInjector()
    routes = api_routes()
    app = Starlette(
        routes=[*routes, *admin_routes(state, injector), *fault_admin_routes(injector)],
        middleware=[
            Middleware(QondorGateway, state=state, keys=keys, routes=routes),
            Middleware(FaultMiddleware, injector=injector, error_body=apim_error_body),
        ],
        exception_handlers={404: _no_route, 405: _wrong_method},
    )
    app.state.qondor = state
    app.state.faults = injector
    return app
