"""The emulated services: where each WSDL is served, its zeep model and the facts zeep does not keep.

Why zeep: parsing requests and rendering responses with the XSD objects of the very WSDLs the client uses
makes every answer schema-valid by construction. Why a second, lxml-based look at the schema: zeep drops
enumeration facets and parses leniently, while .NET's XmlSerializer rejects unknown enum names and
non-canonical numbers (``1E+2`` in a decimal), so :class:`SchemaIndex` re-checks the raw request values.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import zeep
from lxml import etree

WSDL_DIR = Path(__file__).resolve().parent.parent / "wsdl"
NS_MAIN = "http://24sevenOffice.com/webservices"
NS_ACCOUNTING = "http://24sevenoffice.com/webservices/economy/accounting/"
_XSD = "http://www.w3.org/2001/XMLSchema"
_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"


@dataclass(frozen=True)
class ServiceSpec:
    """One ASMX service: its WSDL file, the path it is served at (any host) and its target namespace."""

    name: str
    wsdl_file: str
    path: str
    namespace: str

    @property
    def wsdl_path(self) -> Path:
        return WSDL_DIR / self.wsdl_file


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("Authenticate", "Authenticate.wsdl", "/authenticate/v001/authenticate.asmx", NS_MAIN),
    ServiceSpec("CompanyService", "CompanyService.wsdl", "/CRM/Company/V001/CompanyService.asmx", NS_MAIN),
    ServiceSpec("InvoiceService", "InvoiceService.wsdl", "/Economy/InvoiceOrder/V001/InvoiceService.asmx", NS_MAIN),
    ServiceSpec("ProjectService", "ProjectService.wsdl", "/Project/V001/ProjectService.asmx", NS_MAIN),
    ServiceSpec(
        "TransactionService", "TransactionService.wsdl", "/Economy/Accounting/V001/TransactionService.asmx",
        NS_ACCOUNTING,
    ),
    ServiceSpec("AccountService", "AccountService.wsdl", "/Economy/Account/V004/Accountservice.asmx", NS_MAIN),
    ServiceSpec("ProductService", "ProductService.wsdl", "/Logistics/Product/V001/ProductService.asmx", NS_MAIN),
    ServiceSpec("ClientService", "ClientService.wsdl", "/Client/V001/ClientService.asmx", NS_MAIN),
    ServiceSpec("PersonService", "PersonService.wsdl", "/CRM/Contact/PersonService.asmx", NS_MAIN),
    ServiceSpec(
        "AttachmentService", "AttachmentService.wsdl",
        "/Economy/Accounting/Accounting_V001/AttachmentService.asmx", NS_ACCOUNTING,
    ),
)
_BY_PATH = {spec.path.lower(): spec for spec in SERVICES}
_load_lock = threading.Lock()


def service_for_path(path: str) -> ServiceSpec | None:
    """IIS paths are case-insensitive: ``/authenticate/V001/Authenticate.asmx`` is the same service."""
    return _BY_PATH.get(path.rstrip("/").lower())


@functools.cache
def _client(wsdl_file: str) -> zeep.Client:
    return zeep.Client(str(WSDL_DIR / wsdl_file))


def client_for(spec: ServiceSpec) -> zeep.Client:
    """The zeep model of a service's WSDL, loaded once per process (thread-safe: uvicorn and tests share it)."""
    with _load_lock:
        return _client(spec.wsdl_file)


@functools.cache
def wsdl_text(spec: ServiceSpec) -> str:
    return spec.wsdl_path.read_text(encoding="utf-8")


_ADDRESS = re.compile(r'(<soap(?:12)?:address\s+location=")https?://[^/"]+')


def wsdl_for_base(spec: ServiceSpec, base_url: str) -> str:
    """The WSDL with its ``soap:address``/``soap12:address`` moved onto ``base_url`` (scheme://host[:port])."""
    return _ADDRESS.sub(lambda m: m.group(1) + base_url.rstrip("/"), wsdl_text(spec))


class UnreadableValue(Exception):
    """A request value XmlSerializer cannot read; ``message`` is .NET's inner exception text."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_DECIMAL = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "short": (-(2**15), 2**15 - 1), "long": (-(2**63), 2**63 - 1),
               "unsignedByte": (0, 255)}


class SchemaIndex:
    """Child element types of every element/complexType and the enumerations, read from the WSDL's XSD."""

    def __init__(self, wsdl_path: Path) -> None:
        tree = etree.parse(str(wsdl_path))
        self.children: dict[str, dict[str, str]] = {}
        self.enums: dict[str, tuple[str, ...]] = {}
        self.required_nillable: dict[str, tuple[str, ...]] = {}
        """Per type, the children the schema requires but lets be ``xsi:nil`` (``SystemType`` and
        ``HasInvoiceId`` of a transaction search): a client must send them, nil or not."""
        for schema in tree.iterfind(f"{{{_WSDL_NS}}}types/{{{_XSD}}}schema"):
            for node in schema:
                name = node.get("name")
                if node.tag == f"{{{_XSD}}}simpleType":
                    values = tuple(e.get("value") for e in node.iter(f"{{{_XSD}}}enumeration"))
                    if values:
                        self.enums[name] = values
                elif node.tag in (f"{{{_XSD}}}complexType", f"{{{_XSD}}}element"):
                    self.children[name] = {
                        child.get("name"): child.get("type", "").split(":")[-1]
                        for child in node.iter(f"{{{_XSD}}}element") if child is not node
                    }
                    required = tuple(child.get("name") for child in node.iter(f"{{{_XSD}}}element")
                                     if child is not node and child.get("minOccurs") == "1"
                                     and child.get("nillable") == "true")
                    if required:
                        self.required_nillable[name] = required

    def check(self, element: etree._Element) -> None:
        """Raise :class:`UnreadableValue` for the first value .NET would refuse below a request's body element."""
        for node, type_name in self._walk(element, etree.QName(element).localname):
            text = node.text or ""
            if node.get("{http://www.w3.org/2001/XMLSchema-instance}nil") in ("true", "1"):
                continue
            message = self._problem(type_name, text)
            if message:
                raise UnreadableValue(message, node.sourceline or 1)

    def _walk(self, element: etree._Element, type_name: str) -> Iterator[tuple[etree._Element, str]]:
        fields = self.children.get(type_name, {})
        present = {etree.QName(child).localname for child in element if isinstance(child.tag, str)}
        for name in self.required_nillable.get(type_name, ()):
            if name not in present:
                # The real service's answer is unverified (NOTES §11: zeep always sends these, as xsi:nil);
                # the emulator refuses, so a client that drops one is caught here and not in production.
                raise UnreadableValue(f"The required element '{name}' of {type_name} is missing "
                                      "(send it, with xsi:nil=\"true\" for no value).", element.sourceline or 1)
        for child in element:
            if not isinstance(child.tag, str):
                continue
            child_type = fields.get(etree.QName(child).localname)
            if child_type is None:
                continue
            if child_type in self.children:
                yield from self._walk(child, child_type)
            else:
                yield child, child_type

    def _problem(self, type_name: str, text: str) -> str | None:
        if type_name in self.enums:
            if text.strip() not in self.enums[type_name]:
                return f"Instance validation error: '{text}' is not a valid value for {type_name}."
        elif type_name in _INT_RANGES:
            if not _INT.match(text):
                return "Input string was not in a correct format."
            low, high = _INT_RANGES[type_name]
            if not low <= int(text) <= high:
                return f"Value was either too large or too small for {'an Int32' if type_name == 'int' else type_name}."
        elif type_name == "decimal":
            if not _DECIMAL.match(text):
                return "Input string was not in a correct format."
        elif type_name in ("dateTime", "date"):
            if not _parses_as_datetime(text.strip()):
                return f"The string '{text}' is not a valid AllXsd value."
        elif type_name == "boolean":
            if text.strip() not in ("true", "false", "1", "0"):
                return f"The string '{text}' is not a valid Boolean value."
        elif type_name == "guid" and not _GUID.match(text.strip()):
            return "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."
        return None


def _parses_as_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@functools.cache
def _schema_index(wsdl_file: str) -> SchemaIndex:
    return SchemaIndex(WSDL_DIR / wsdl_file)


def schema_index(spec: ServiceSpec) -> SchemaIndex:
    with _load_lock:
        return _schema_index(spec.wsdl_file)
