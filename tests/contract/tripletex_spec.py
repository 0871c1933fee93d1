"""Validate Tripletex HTTP exchanges against Tripletex's own OpenAPI spec (v2.74.00), with openapi-core.

Reusable by any test (``tests/`` is on ``sys.path`` via ``tests/conftest.py``, so import it as
``from contract.tripletex_spec import CapturingTransport, CapturingASGI, assert_conforms``): wrap a transport
(client side) or the emulator app (server side), run the code under test, then check every captured exchange::

    capture = CapturingTransport(httpx.ASGITransport(app))          # or CapturingTransport(httpx.AsyncHTTPTransport())
    client = TripletexClient(base_url, ..., transport=capture)
    ...
    assert_conforms(capture.exchanges)

    app = CapturingASGI(create_app())                                # server side: sees every caller's requests
    ...
    assert_conforms(app.exchanges)

The spec is the unmodified ``swagger.json`` published at ``https://tripletex.no/v2/openapi.json`` (sha256 in
``SPEC_SHA256``), stored gzipped beside this file so a fresh clone can run the tests. It is loaded once per
process (``load_spec`` is cached). The *full* spec is used, not an extracted sub-spec: openapi-core builds
its objects lazily and a validation costs a few milliseconds, so sub-setting bought nothing and would hide
endpoints that other callers (end-to-end tests) use.

The spec is patched in memory, each patch for a stated reason:

1. ``servers`` becomes the relative ``/v2`` so exchanges with any host (emulator, loopback, real) match.
2. Integer parameter defaults written as strings (``"0"``, ``"1000"`` for ``from``/``count``) are cast:
   openapi-core applies defaults to absent parameters and would otherwise reject the spec's own default.
3. The ``readOnly: true`` that the generator puts on 427 *component* schemas (``Invoice``, ``Currency``,
   ``PaymentType``, ``Company``...) is removed: taken literally it forbids every ``POST /invoice`` body and
   every ``{"currency": {"id": 1}}`` reference, which Tripletex accepts. Property-level ``readOnly`` stays,
   so a request that writes e.g. ``Invoice.amount`` still fails.
4. Requests are validated with ``additionalProperties: false`` on every plain object schema: Tripletex
   rejects unknown body fields at runtime (422 "Feltet eksisterer ikke i objektet").
5. Responses are validated with ``nullable: true`` on every schema: the spec declares nothing nullable, yet
   Tripletex sends nulls (its own envelope docs: ``versionDigest`` is "null if no result"). An enum also gets
   ``null`` among its values (OpenAPI 3.0.3: ``nullable`` does not extend an ``enum``), since an unset enum
   field (e.g. ``Customer.emailAttachmentType``) comes back as null in a response without ``fields``.

Checks beyond openapi-core:

* every query parameter name must be declared for the operation (Tripletex ignores unknown filters, so a
  typo such as ``name`` for ``customerName`` would silently match everything);
* the spec declares only success statuses; an undeclared 4xx/5xx must carry the documented error envelope
  (``ApiError``) whose ``status`` equals the HTTP status and whose ``requestId`` equals ``x-tlx-request-id``;
  304 is accepted only for a GET that sent ``If-None-Match``;
* every response carries ``x-tlx-request-id`` and the ``X-Rate-Limit-Limit``/``-Remaining`` headers.
  (``X-Rate-Limit-Reset`` may be missing on 429, as on the real API, issue #103.)

Run as a script (``python tests/contract/tripletex_spec.py``) it prints ``accounting/tripletex/emulator/schema.py``,
the emulator's property tables generated from the spec (a test keeps the committed file in step).
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH = Path(__file__).with_name("tripletex-openapi-2.74.00.json.gz")
SPEC_SHA256 = "40ed351ee22608e7592dcf7bdceb344d2dfbe0badd997b68fc97b13537cada26"
SPEC_ENV = "TRIPLETEX_OPENAPI_SPEC"
"""Point this environment variable at another (plain or gzipped) copy of the spec to validate against it."""

BASE_PATH = "/v2"

# Component schemas the emulator models, and the emulator's name for each (see accounting/tripletex/emulator/schema.py).
EMULATED_SCHEMAS: dict[str, str] = {
    "Customer": "customer", "Contact": "contact", "Employee": "employee", "Department": "department",
    "Project": "project", "Order": "order", "OrderLine": "orderLine", "Invoice": "invoice",
    "ProjectInvoiceDetails": "projectInvoiceDetails", "PaymentType": "paymentType", "VatType": "vatType",
    "Product": "product", "Currency": "currency", "Address": "address", "DeliveryAddress": "deliveryAddress",
    "Company": "company", "SessionToken": "sessionToken", "LoggedInUserInfo": "loggedInUserInfo",
    "Supplier": "supplier", "SupplierInvoice": "supplierInvoice", "Voucher": "voucher", "VoucherType": "voucherType",
    "Posting": "posting", "Account": "account",
}


# --------------------------------------------------------------------------------------------- loading


@functools.cache
def raw_spec() -> dict[str, Any]:
    """The unmodified spec as a dict (verified against ``SPEC_SHA256`` when the bundled copy is used)."""
    path = Path(os.environ.get(SPEC_ENV, SPEC_PATH))
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if path == SPEC_PATH and hashlib.sha256(data).hexdigest() != SPEC_SHA256:
        raise RuntimeError(f"{path} is not the pinned Tripletex spec (sha256 mismatch)")
    return json.loads(data)


def _walk_schemas(node: Any) -> Iterable[dict[str, Any]]:
    """Every dict that looks like a schema (has a type, properties or items), depth first."""
    if isinstance(node, dict):
        if any(k in node for k in ("type", "properties", "items")):
            yield node
        for value in node.values():
            yield from _walk_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_schemas(value)


def _patched(raw: dict[str, Any], *, for_requests: bool) -> dict[str, Any]:
    spec = copy.deepcopy(raw)
    spec["servers"] = [{"url": BASE_PATH}]
    casts = {"integer": int, "number": float, "boolean": lambda v: str(v).lower() == "true"}
    for item in spec["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []) if isinstance(op, dict) else []:
                schema = param.get("schema", {})
                if isinstance(schema.get("default"), str) and schema.get("type") in casts:
                    schema["default"] = casts[schema["type"]](schema["default"])
    for schema in spec["components"]["schemas"].values():
        schema.pop("readOnly", None)
    for schema in _walk_schemas(spec):
        if for_requests:
            if "properties" in schema and not {"additionalProperties", "allOf", "discriminator"} & schema.keys():
                schema["additionalProperties"] = False
        else:
            schema["nullable"] = True
            if "enum" in schema and None not in schema["enum"]:
                schema["enum"] = [*schema["enum"], None]
    return spec


# --------------------------------------------------------------------------------------------- exchanges


@dataclass
class Exchange:
    """One HTTP request and what came back (``status`` None when the transport failed)."""

    method: str
    url: httpx.URL
    request_headers: httpx.Headers
    request_body: bytes
    status: int | None = None
    response_headers: httpx.Headers = field(default_factory=httpx.Headers)
    response_body: bytes = b""
    error: str | None = None

    @property
    def path(self) -> str:
        return self.url.path

    def describe(self) -> str:
        return f"{self.method} {self.url.path} -> {self.status if self.status is not None else self.error}"


class CapturingTransport(httpx.AsyncBaseTransport):
    """Client-side capture: wraps any async transport and records every exchange (bodies read in full)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        exchange = Exchange(request.method, request.url, httpx.Headers(request.headers), body)
        self.exchanges.append(exchange)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            raise
        exchange.status = response.status_code
        exchange.response_headers = httpx.Headers(response.headers)
        try:
            content = await response.aread()
        except Exception as exc:  # the body was lost (e.g. a dropped connection): keep status, note the error
            exchange.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            await response.aclose()
        exchange.response_body = content
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class CapturingASGI:
    """Server-side capture: an ASGI wrapper recording every exchange the app serves (admin paths skipped)."""

    def __init__(self, app: Any, *, skip_prefixes: tuple[str, ...] = ("/_admin",)) -> None:
        self.app = app
        self.skip_prefixes = skip_prefixes
        self.exchanges: list[Exchange] = []

    @property
    def state(self) -> Any:
        """The wrapped Starlette app's state (``app.state.tripletex`` keeps working through the wrapper)."""
        return self.app.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        response_chunks: list[bytes] = []

        async def recording_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        headers = httpx.Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
        host = headers.get("host", "emulator")
        raw_path = scope.get("raw_path") or scope["path"].encode()
        url = httpx.URL(f"{scope.get('scheme', 'http')}://{host}{raw_path.decode()}?{scope['query_string'].decode()}")
        exchange = Exchange(scope["method"], url, headers, b"")
        self.exchanges.append(exchange)

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.response_headers = httpx.Headers(
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
                )
            elif message["type"] == "http.response.body":
                response_chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        except Exception as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            exchange.request_body = b"".join(chunks)
            exchange.response_body = b"".join(response_chunks)


# --------------------------------------------------------------------------------------------- openapi-core adapters


class _OpenAPIRequest:
    """openapi-core's Request protocol over a captured exchange."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        query = parse_qsl(exchange.url.query.decode(), keep_blank_values=True)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query),
            header=Headers(list(exchange.request_headers.items())),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        return f"{self._exchange.url.scheme}://{self._exchange.url.netloc.decode()}"

    @property
    def path(self) -> str:
        return self._exchange.url.path

    @property
    def method(self) -> str:
        return self._exchange.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._exchange.request_body or None

    @property
    def content_type(self) -> str:
        return self._exchange.request_headers.get("content-type", "").lower()


class _OpenAPIResponse:
    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    @property
    def status_code(self) -> int:
        assert self._exchange.status is not None
        return self._exchange.status

    @property
    def content_type(self) -> str:
        return self._exchange.response_headers.get("content-type", "").lower()

    @property
    def headers(self) -> Headers:
        return Headers(list(self._exchange.response_headers.items()))

    @property
    def data(self) -> bytes | None:
        return self._exchange.response_body or None


def _describe_error(exc: Exception) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    while cause is not None and len(parts) < 4:
        details = getattr(cause, "schema_errors", None)
        parts.append(f"{type(cause).__name__}: {cause}" + (f" {list(map(str, details))[:5]}" if details else ""))
        cause = cause.__cause__
    return " <- ".join(parts)


# --------------------------------------------------------------------------------------------- the spec


class TripletexSpec:
    """The patched spec, with request and response validation of captured exchanges."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        config = Config(spec_validator_cls=None)  # the published spec fails openapi-spec-validator (patch 2)
        self.requests = OpenAPI.from_dict(_patched(raw, for_requests=True), config=config)
        response_spec = _patched(raw, for_requests=False)
        self.responses = OpenAPI.from_dict(response_spec, config=config)
        error_schema = {"$ref": "#/components/schemas/ApiError", "components": response_spec["components"]}
        self._error_validator = OAS30Validator(error_schema)
        self._templates = [
            (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"), template)
            for template in raw["paths"]
        ]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The spec's (template, operation) for a request path under ``/v2``; literal segments win."""
        if not path.startswith(BASE_PATH + "/"):
            return None
        relative = path[len(BASE_PATH):]
        matches = [t for rx, t in self._templates if rx.match(relative) and method.lower() in self.raw["paths"][t]]
        if not matches:
            return None
        template = min(matches, key=lambda t: t.count("{"))
        return template, self.raw["paths"][template][method.lower()]

    def check(self, exchange: Exchange) -> list[str]:
        """Everything wrong with one exchange (empty when it conforms)."""
        found = self.operation(exchange.method, exchange.path)
        if found is None:
            return [f"{exchange.describe()}: no such operation in the spec"]
        template, op = found
        problems = self._check_request(exchange, op)
        if exchange.status is not None and exchange.error is None:
            problems += self._check_response(exchange)
        return [f"{exchange.describe()} [{exchange.method} {template}]: {p}" for p in problems]

    def _check_request(self, exchange: Exchange, op: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        sent = {name for name, _ in parse_qsl(exchange.url.query.decode(), keep_blank_values=True)}
        problems += [f"query parameter {name!r} is not declared" for name in sorted(sent - declared)]
        try:
            self.requests.validate_request(_OpenAPIRequest(exchange))
        except Exception as exc:
            problems.append("request: " + _describe_error(exc))
        return problems

    def _check_response(self, exchange: Exchange) -> list[str]:
        problems: list[str] = []
        status = exchange.status
        assert status is not None
        headers = exchange.response_headers
        request_id = headers.get("x-tlx-request-id")
        if not request_id:
            problems.append("response lacks x-tlx-request-id")
        expected = ["x-rate-limit-limit", "x-rate-limit-remaining"] + (["x-rate-limit-reset"] if status != 429 else [])
        for name in expected:
            if name not in headers:
                problems.append(f"response lacks {name}")
        found = self.operation(exchange.method, exchange.path)
        assert found is not None
        declared = found[1].get("responses", {})
        if str(status) in declared:
            if declared[str(status)].get("content") and exchange.response_body:
                try:
                    self.responses.validate_response(_OpenAPIRequest(exchange), _OpenAPIResponse(exchange))
                except Exception as exc:
                    problems.append("response: " + _describe_error(exc))
        elif status == 304:
            if exchange.method != "GET" or "if-none-match" not in exchange.request_headers:
                problems.append("304 without a conditional GET")
            if exchange.response_body:
                problems.append("304 with a body")
        elif status >= 400:
            problems += self._check_error_body(exchange, request_id)
        else:
            problems.append(f"status {status} is not declared ({', '.join(declared)})")
        return problems

    def _check_error_body(self, exchange: Exchange, request_id: str | None) -> list[str]:
        if not exchange.response_headers.get("content-type", "").startswith("application/json"):
            return ["error response is not application/json"]
        try:
            body = json.loads(exchange.response_body)
        except ValueError:
            return ["error response body is not JSON"]
        problems = [f"error envelope: {e.message}" for e in self._error_validator.iter_errors(body)]
        if isinstance(body, Mapping):
            if body.get("status") != exchange.status:
                problems.append(f"error envelope status {body.get('status')} != HTTP {exchange.status}")
            if request_id and body.get("requestId") not in (None, request_id):
                problems.append("error envelope requestId differs from x-tlx-request-id")
        return problems


@functools.cache
def load_spec() -> TripletexSpec:
    """The process-wide validator (loading and patching the 3.7 MB spec takes well under a second)."""
    return TripletexSpec(raw_spec())


def conformance_problems(exchanges: Iterable[Exchange], spec: TripletexSpec | None = None) -> list[str]:
    """All problems of all exchanges, in order."""
    spec = spec or load_spec()
    return [problem for exchange in exchanges for problem in spec.check(exchange)]


def assert_conforms(exchanges: Iterable[Exchange], spec: TripletexSpec | None = None) -> None:
    """Fail with a readable list when any captured request or response breaks the spec."""
    exchanges = list(exchanges)
    assert exchanges, "no exchanges were captured"
    problems = conformance_problems(exchanges, spec)
    assert not problems, f"{len(problems)} spec violation(s) in {len(exchanges)} exchanges:\n" + "\n".join(problems)


# --------------------------------------------------------------------------------------------- emulator tables


def _prop_kind(prop: Mapping[str, Any]) -> tuple[str, str | None]:
    if "$ref" in prop:
        return "ref", prop["$ref"].rsplit("/", 1)[-1]
    if prop.get("type") == "array":
        items = prop.get("items", {})
        if "$ref" in items:
            return "refs", items["$ref"].rsplit("/", 1)[-1]
        return "array", items.get("type")
    return prop.get("type", "object"), None


def emulator_schema_source(raw: dict[str, Any] | None = None) -> str:
    """The text of ``accounting/tripletex/emulator/schema.py``, generated from the spec."""
    raw = raw or raw_spec()
    schemas = raw["components"]["schemas"]
    lines = [
        '"""Property tables of the Tripletex entities the emulator models, GENERATED from Tripletex\'s OpenAPI spec',
        f"v{raw['info']['version']} by ``python tests/contract/tripletex_spec.py`` (a contract test keeps it in step).",
        "",
        "Each property maps to ``(kind, target, read_only, enum)``: kind is a JSON type, ``ref`` (an object of schema",
        "``target``) or ``refs`` (a list of them); read-only properties are ignored on write, like the real API.",
        '"""',
        "",
        "# ruff: noqa: E501",
        "from __future__ import annotations",
        "",
        "Prop = tuple[str, str | None, bool, tuple[str, ...] | None]",
        "",
        f"SCHEMA_TABLES: dict[str, str] = {json.dumps(EMULATED_SCHEMAS)}",
        '"""Spec schema name -> the emulator\'s entity type."""',
        "",
        "SCHEMAS: dict[str, dict[str, Prop]] = {",
    ]
    for name in EMULATED_SCHEMAS:
        lines.append(f"    {name!r}: {{")
        for prop_name, prop in schemas[name]["properties"].items():
            kind, target = _prop_kind(prop)
            enum = tuple(prop["enum"]) if "enum" in prop else None
            lines.append(f"        {prop_name!r}: ({kind!r}, {target!r}, {bool(prop.get('readOnly'))}, {enum!r}),")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(emulator_schema_source(), end="")
