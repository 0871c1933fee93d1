"""The codec server: lets operators who hold the keys read decrypted payloads in the Temporal Web UI and CLI.

Temporal's remote-codec protocol: ``POST /decode`` and ``POST /encode`` take and return the JSON form of
``temporal.api.common.v1.Payloads`` (``{"payloads": [{"metadata": {...}, "data": "<base64>"}]}``); the caller
names its namespace in ``X-Namespace``. The Web UI calls it from the browser, hence CORS for the UI's origin
(preflights carry no credentials, so CORS answers them before any token check).

Every encode/decode needs the server's token, because whoever can call ``/decode`` reads personal data:

* ``Authorization: Bearer <token>`` — ``temporal workflow show --codec-endpoint URL --codec-auth "Bearer <token>"``
  and scripts;
* ``/t/<token>/decode`` — for the Web UI, which without SSO cannot add a header to its codec calls: configure
  the endpoint as ``URL/t/<token>`` (``temporal server start-dev --ui-codec-endpoint``, ``TEMPORAL_CODEC_ENDPOINT``
  of the UI server, or the UI's codec settings). The token then sits in a URL, so serve it over TLS and keep
  the server on loopback or behind the operators' auth proxy (docs/operations.md).

Run it with ``qondor-sync codec-server --port N`` (keys from the worker's ``QONDOR_SYNC_CODEC_KEYS[_FILE]``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from workers.codec import CodecKeyError, EncryptionCodec

log = logging.getLogger(__name__)

TOKEN_ENV = "QONDOR_SYNC_CODEC_SERVER_TOKEN"
DEFAULT_UI_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
"""The dev server's Web UI; production passes its UI's origin (``--ui-origin https://temporal.example.com``)."""


def new_token() -> str:
    return secrets.token_urlsafe(24)


def create_app(codec: EncryptionCodec, token: str, ui_origins: Sequence[str] = DEFAULT_UI_ORIGINS) -> Starlette:
    """The codec server app for ``codec`` (its keys), requiring ``token`` on every encode/decode."""
    if len(token) < 16:
        raise ValueError("the codec server token must be at least 16 characters")
    expected = token.encode()

    def authorised(request: Request) -> bool:
        given = request.path_params.get("token")
        if given is None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            given = value.strip() if scheme.lower() == "bearer" else ""
        return hmac.compare_digest(given.encode(), expected)

    def handler(decode: bool):
        async def apply(request: Request) -> Response:
            if not authorised(request):
                return JSONResponse(
                    {"message": "a valid bearer token is required"}, 401, headers={"WWW-Authenticate": "Bearer"}
                )
            try:
                payloads = json_format.Parse(await request.body(), Payloads())
            except json_format.ParseError as exc:
                return JSONResponse({"message": f"not a Payloads JSON document: {exc}"}, 400)
            try:
                out = await (codec.decode if decode else codec.encode)(payloads.payloads)
            except CodecKeyError as exc:
                log.warning("codec server: %s", exc)
                return JSONResponse({"message": str(exc)}, 400)
            body = json_format.MessageToJson(Payloads(payloads=out))
            return Response(body, media_type="application/json")

        return apply

    routes = [
        Route("/decode", handler(decode=True), methods=["POST"]),
        Route("/encode", handler(decode=False), methods=["POST"]),
        Route("/t/{token}/decode", handler(decode=True), methods=["POST"]),
        Route("/t/{token}/encode", handler(decode=False), methods=["POST"]),
    ]
    cors = Middleware(
        CORSMiddleware,
        allow_origins=list(ui_origins),
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
        allow_credentials=True,
    )
    return Starlette(routes=routes, middleware=[cors])
