"""Contract helpers: the XML Schemas embedded in the shipped WSDLs as ``lxml.etree.XMLSchema`` validators, and an
httpx transport that records every SOAP exchange so a test can validate what went over the wire.

Why lxml and not zeep: zeep is what produces (client) and parses (emulator) these messages, so checking them
with zeep would partly check zeep against itself; libxml2's XSD validator is an independent judge and
rejects unknown elements, wrong order, wrong namespaces and bad lexical values (``1E+16`` is no xs:decimal).

Each WSDL's ``<wsdl:types>`` holds one or two ``xs:schema`` (the service's and, in most, Microsoft's
``guid`` type schema, imported without a location); they are compiled together through an in-memory resolver.
SOAP faults are not described by the WSDLs, so they are checked against SOAP 1.1's ``Fault`` definition.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from lxml import etree

from accounting.finago.client import SERVICES, WSDL_DIR

API = "http://api.finago.test"
WEBSERVICES = "http://webservices.finago.test"
XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_PARSER = dict(resolve_entities=False, no_network=True)

SOAP11_FAULT_XSD = f"""<xs:schema xmlns:xs="{XS}" xmlns:tns="{SOAP_ENV}" targetNamespace="{SOAP_ENV}">
  <xs:element name="Fault">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="faultcode" type="xs:QName"/>
        <xs:element name="faultstring" type="xs:string"/>
        <xs:element name="faultactor" type="xs:anyURI" minOccurs="0"/>
        <xs:element name="detail" minOccurs="0">
          <xs:complexType mixed="true">
            <xs:sequence><xs:any minOccurs="0" maxOccurs="unbounded" processContents="lax"/></xs:sequence>
            <xs:anyAttribute processContents="lax"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>"""
"""SOAP 1.1 §4.4 (the envelope schema's ``Fault``, restricted to what a fault must contain)."""


class _MemoryResolver(etree.Resolver):
    def __init__(self, documents: dict[str, bytes]) -> None:
        super().__init__()
        self.documents = documents

    def resolve(self, url, pubid, context):  # type: ignore[no-untyped-def]
        name = url.rsplit("/", 1)[-1]
        if name in self.documents:
            return self.resolve_string(self.documents[name], context)
        return None


def schema_from_wsdl(path: Path) -> etree.XMLSchema:
    """One validator for every ``xs:schema`` in the WSDL's ``<wsdl:types>`` (imports resolved in memory)."""
    root = etree.parse(str(path), etree.XMLParser(**_PARSER)).getroot()
    schemas = root.findall(f"{{{WSDL}}}types/{{{XS}}}schema")
    names = {s.get("targetNamespace"): f"schema{i}.xsd" for i, s in enumerate(schemas)}
    documents: dict[str, bytes] = {}
    for schema in schemas:
        for imp in schema.findall(f"{{{XS}}}import"):
            if imp.get("namespace") in names and imp.get("schemaLocation") is None:
                imp.set("schemaLocation", names[imp.get("namespace")])
        documents[names[schema.get("targetNamespace")]] = etree.tostring(schema)
    parser = etree.XMLParser(**_PARSER)
    parser.resolvers.add(_MemoryResolver(documents))
    main = schemas[0].get("targetNamespace")
    doc = etree.fromstring(documents[names[main]], parser, base_url=f"memory://wsdl/{names[main]}")
    return etree.XMLSchema(etree.ElementTree(doc))


@functools.cache
def wsdl_schema(wsdl: str) -> etree.XMLSchema:
    return schema_from_wsdl(WSDL_DIR / wsdl)


@functools.cache
def fault_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(SOAP11_FAULT_XSD.encode()))


def service_of_path(path: str) -> str:
    """The service whose real path this is (case-insensitive, as IIS is)."""
    for name, definition in SERVICES.items():
        if definition.path.lower() == path.lower():
            return name
    raise AssertionError(f"no 24SevenOffice service at {path}")


class ContractViolation(AssertionError):
    pass


def body_child(content: bytes) -> etree._Element:
    root = etree.fromstring(content, etree.XMLParser(**_PARSER))
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise ContractViolation(f"not a SOAP 1.1 envelope: {root.tag}")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if len(children) != 1:
        raise ContractViolation(f"the SOAP Body must hold exactly one element, found {len(children)}")
    return children[0]


def validate_element(element: etree._Element, schema: etree.XMLSchema) -> None:
    """Validate one element as a document of its own (a copy keeps the namespaces it uses)."""
    import copy

    doc = etree.ElementTree(copy.deepcopy(element))
    if not schema.validate(doc):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)
        raise ContractViolation(f"{etree.QName(element).localname} is not valid: {errors}")


@dataclass
class Exchange:
    """One recorded request/response pair."""

    path: str
    soap_action: str
    request: bytes
    status: int
    response: bytes
    cookie: str | None = None
    host: str = ""

    @property
    def operation(self) -> str:
        return self.soap_action.rsplit("/", 1)[-1]


def validate_exchange(exchange: Exchange) -> tuple[str, str]:
    """Validate both bodies of an exchange; returns (operation, response kind: 'result' | 'fault').

    Request: the body child is ``{ns}<Op>`` of the service at that path, ``<Op>`` and ``ns`` agree with the
    SOAPAction, and it is valid against that WSDL's schema. Response: ``{ns}<Op>Response`` valid against the
    same schema (HTTP 200), or a SOAP 1.1 Fault (HTTP 500)."""
    definition = SERVICES[service_of_path(exchange.path)]
    schema = wsdl_schema(definition.wsdl)
    request = body_child(exchange.request)
    qname = etree.QName(request)
    expected_action = f"{definition.namespace}{'' if definition.namespace.endswith('/') else '/'}{qname.localname}"
    if qname.namespace != definition.namespace:
        raise ContractViolation(f"request element in namespace {qname.namespace!r}, not {definition.namespace!r}")
    if exchange.soap_action != expected_action:
        raise ContractViolation(f"SOAPAction {exchange.soap_action!r} does not name {expected_action!r}")
    validate_element(request, schema)
    response = body_child(exchange.response)
    if etree.QName(response).text == f"{{{SOAP_ENV}}}Fault":
        if exchange.status != 500:
            raise ContractViolation(f"a fault must come with HTTP 500, not {exchange.status}")
        validate_element(response, fault_schema())
        return qname.localname, "fault"
    if exchange.status != 200:
        raise ContractViolation(f"HTTP {exchange.status} without a fault")
    if etree.QName(response).text != f"{{{definition.namespace}}}{qname.localname}Response":
        raise ContractViolation(f"response element {response.tag} does not answer {qname.localname}")
    validate_element(response, schema)
    return qname.localname, "result"


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes every request to ``inner`` and keeps the request body and the (fully read) response body."""

    inner: httpx.AsyncBaseTransport
    exchanges: list[Exchange] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        await response.aclose()
        self.exchanges.append(Exchange(request.url.path, request.headers.get("SOAPAction", "").strip('"'), body,
                                       response.status_code, content, request.headers.get("Cookie"),
                                       request.url.host))
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()
