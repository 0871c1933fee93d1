"""``create_app``: the 24SevenOffice emulator as a Starlette ASGI app (in-process via httpx, or on uvicorn).

One app serves every service at its real path, whichever host the client thinks it talks to
(``api.24sevenoffice.com`` or ``webservices.24sevenoffice.com``): ``GET <path>?WSDL`` returns the WSDL
pointing back at the emulator, ``POST <path>`` is SOAP 1.1 or 1.2.

Middleware (outermost first): ``SoapFaultMedia`` -> ``FaultMiddleware`` (``emulators.faults``) -> routes.
Injected ``status`` faults carry a SOAP fault body in the request's SOAP version; ``faults.py`` always
labels string bodies ``text/plain``, so ``SoapFaultMedia`` relabels them with the SOAP media type.
"""

from __future__ import annotations

from contextvars import ContextVar

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounting.finago.emulator import admin
from accounting.finago.emulator.dispatch import handle
from accounting.finago.emulator.soap import SoapVersion, action_of, fault_xml, media_type, server_fault, version_of
from accounting.finago.emulator.state import FinagoState
from accounting.finago.emulator.wsdl import service_for_path, wsdl_for_base
from emulators.faults import FaultMiddleware

ADMIN_PREFIX = "/_admin"
SESSION_COOKIE = "ASP.NET_SessionId"
_request_version: ContextVar[SoapVersion] = ContextVar("finago_soap_version", default="1.1")


def _injected_fault(status: int, message: str) -> str:
    """Body of an injected ``status`` fault: an ASMX fault in the request's SOAP version."""
    return fault_xml(server_fault(f"{message} (HTTP {status})"), _request_version.get()).decode()


class SoapFaultMedia:
    """Remembers the request's SOAP version and gives injected fault bodies the SOAP media type."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        version = version_of(content_type)
        token = _request_version.set(version)

        async def relabel(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, media_type(version).encode()) if k.lower() == b"content-type" and
                           v.startswith(b"text/plain") else (k, v) for k, v in message.get("headers", [])]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, relabel)
        finally:
            _request_version.reset(token)


async def soap_endpoint(request: Request) -> Response:
    spec = service_for_path(request.url.path)
    if spec is None:
        return PlainTextResponse("The resource cannot be found.", status_code=404)
    if request.method == "GET":
        if any(key.lower() == "wsdl" for key in request.query_params):
            base = f"{request.url.scheme}://{request.url.netloc}"
            return Response(wsdl_for_base(spec, base), media_type="text/xml; charset=utf-8")
        return PlainTextResponse(f"{spec.name} (24SevenOffice emulator): append ?WSDL for the service description.")
    content_type = request.headers.get("content-type")
    version = version_of(content_type)
    state: FinagoState = request.app.state.finago
    action = action_of(content_type, request.headers.get("soapaction"), version)
    reply = handle(state, spec, version, await request.body(), action, request.cookies.get(SESSION_COOKIE))
    return Response(reply.body, status_code=reply.status, headers=reply.headers, media_type=media_type(version))


def create_app(state: FinagoState | None = None) -> Starlette:
    """The emulator; its state is ``app.state.finago`` (the default seed when not given)."""
    state = state or FinagoState()
    app = Starlette(
        routes=[*admin.routes(state), Route("/{path:path}", soap_endpoint, methods=["GET", "POST"])],
        middleware=[
            Middleware(SoapFaultMedia),
            Middleware(FaultMiddleware, injector=state.faults, exempt_prefixes=(ADMIN_PREFIX,),
                       error_body=_injected_fault),
        ],
    )
    app.state.finago = state
    return app
