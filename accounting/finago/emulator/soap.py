"""SOAP 1.1/1.2 envelopes and ASMX faults, byte-for-byte in the shape ASP.NET web services produce.

Why hand-built envelopes: zeep renders the *body* from the WSDL's XSD (so it is schema-valid), but the
envelope and the fault text are what clients key on (they split ``faultstring`` on ``--->`` and match the
inner message), so they follow NOTES.md §10 exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lxml import etree

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSD = "http://www.w3.org/2001/XMLSchema"
_PROCESS = "System.Web.Services.Protocols.SoapException: Server was unable to process request. ---> "
_READ = "System.Web.Services.Protocols.SoapException: Server was unable to read request. ---> "

SoapVersion = Literal["1.1", "1.2"]


def version_of(content_type: str | None) -> SoapVersion:
    """ASMX tells the protocols apart by media type: ``application/soap+xml`` is SOAP 1.2."""
    return "1.2" if (content_type or "").lower().startswith("application/soap+xml") else "1.1"


def media_type(version: SoapVersion) -> str:
    return "application/soap+xml; charset=utf-8" if version == "1.2" else "text/xml; charset=utf-8"


def action_of(content_type: str | None, soap_action: str | None, version: SoapVersion) -> str | None:
    """The requested action: the ``SOAPAction`` header (1.1) or the ``action`` media-type parameter (1.2)."""
    if version == "1.1":
        return soap_action.strip().strip('"') if soap_action is not None else None
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "action":
            return value.strip().strip('"')
    return None


@dataclass
class SoapFault(Exception):
    """An ASMX fault. ``sender`` faults (``soap:Client``) are requests the server could not read."""

    inner: str
    sender: bool = False
    faultstring_override: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.faultstring)

    @property
    def faultstring(self) -> str:
        if self.faultstring_override is not None:
            return self.faultstring_override
        return (_READ if self.sender else _PROCESS) + self.inner


def server_fault(inner: str) -> SoapFault:
    """``soap:Server``: the request was read, the service refused it (auth, rate limit, bad search...)."""
    return SoapFault(inner)


def read_fault(inner: str, line: int = 1, column: int = 1) -> SoapFault:
    """``soap:Client``: XmlSerializer could not deserialize the request (unknown enum, ``1E+2`` decimal...)."""
    return SoapFault(f"There is an error in XML document ({line}, {column}). ---> {inner}", sender=True)


def unknown_action_fault(action: str) -> SoapFault:
    return SoapFault("", sender=True,
                     faultstring_override=f"Server did not recognize the value of HTTP Header SOAPAction: {action}.")


def _envelope(version: SoapVersion) -> tuple[etree._Element, etree._Element]:
    ns = SOAP12_ENV if version == "1.2" else SOAP11_ENV
    envelope = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns, "xsi": _XSI, "xsd": _XSD})
    return envelope, etree.SubElement(envelope, f"{{{ns}}}Body")


def _serialize(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def fault_xml(fault: SoapFault, version: SoapVersion) -> bytes:
    """The fault envelope (HTTP 500) in the request's SOAP version."""
    envelope, body = _envelope(version)
    if version == "1.2":
        ns = SOAP12_ENV
        node = etree.SubElement(body, f"{{{ns}}}Fault")
        code = etree.SubElement(node, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = "soap:Sender" if fault.sender else "soap:Receiver"
        reason = etree.SubElement(node, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = fault.faultstring
        etree.SubElement(node, f"{{{ns}}}Detail")
    else:
        node = etree.SubElement(body, f"{{{SOAP11_ENV}}}Fault")
        etree.SubElement(node, "faultcode").text = "soap:Client" if fault.sender else "soap:Server"
        etree.SubElement(node, "faultstring").text = fault.faultstring
        etree.SubElement(node, "detail")
    return _serialize(envelope)


def body_child(raw: bytes, version: SoapVersion) -> etree._Element:
    """The operation element inside ``Envelope/Body``; unreadable envelopes are ``soap:Client`` faults."""
    try:
        root = etree.fromstring(raw, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        raise read_fault(str(exc.msg), line, column) from exc
    ns = SOAP12_ENV if version == "1.2" else SOAP11_ENV
    body = root.find(f"{{{ns}}}Body") if root.tag == f"{{{ns}}}Envelope" else None
    children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if not children:
        raise read_fault("The request has no SOAP body element.")
    return children[0]


def response_xml(version: SoapVersion, render: Callable[[etree._Element], None]) -> bytes:
    """A response envelope; ``render(body)`` appends the zeep-rendered ``<OpResponse>`` to the body."""
    envelope, body = _envelope(version)
    render(body)
    etree.cleanup_namespaces(envelope, top_nsmap={"soap": SOAP12_ENV if version == "1.2" else SOAP11_ENV})
    return _serialize(envelope)
