"""A fast renderer of large SOAP results (a ledger read of tens of thousands of transactions).

Why: zeep renders a result by first building its value objects from our dicts, which costs about a millisecond
per transaction; a benchmark ledger of 100,000 entries would spend minutes in the emulator. This walks the
same zeep types (element order, namespaces; the simple types' own ``xmlvalue`` for anything but the plain
values below) straight from the dicts, so the XML is what zeep would write
(``tests/finago/test_actuals_contract.py`` validates it against the WSDL and compares it with zeep's).
Absent values are left out (every optional element of these types may be); decimals are written positionally.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree
from zeep.xsd import ComplexType

FAST_OPERATIONS: frozenset[str] = frozenset({"TransactionService.GetTransactions"})
"""Operations whose results are rendered here rather than by zeep."""

_Field = tuple[str, str, bool, bool, Any]
"""(name, qualified tag, repeated, complex, zeep type) of one child element."""


def render_output(body: etree._Element, output: Any, result: Any) -> None:
    """Append ``<OpResponse><OpResult>…`` for ``result`` (the handler's dicts) to the SOAP body: written as
    text (lxml builds elements at a few microseconds each; a ledger page has hundreds of thousands) in the
    operation's namespace, then parsed once."""
    _, element = output.type.elements[0]
    namespace, response_name = _split(output.qname)
    parts: list[str] = [f'<{response_name} xmlns="{escape(namespace, _QUOTE)}">']
    _element(parts, element.qname, element.max_occurs != 1, isinstance(element.type, ComplexType), element.type,
             result, namespace)
    parts.append(f"</{response_name}>")
    body.append(etree.fromstring("".join(parts).encode(), parser=_PARSER))


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
_QUOTE = {'"': "&quot;"}


def _split(qname: Any) -> tuple[str, str]:
    text = str(qname)
    namespace, _, local = text[1:].partition("}") if text.startswith("{") else ("", "", text)
    return namespace, local


@functools.cache
def _fields(type_: ComplexType) -> tuple[_Field, ...]:
    return tuple((name, str(child.qname), child.max_occurs != 1, isinstance(child.type, ComplexType), child.type)
                 for name, child in type_.elements)


def _element(parts: list[str], qname: Any, repeated: bool, complex_: bool, type_: Any, value: Any,
             namespace: str) -> None:
    child_ns, tag = _split(qname)
    if child_ns != namespace:  # never for these types (one namespace, elementFormDefault qualified)
        raise ValueError(f"{qname} is outside the response's namespace {namespace}")
    for item in value if repeated and isinstance(value, list) else (value,):
        if item is None:
            continue
        if complex_:
            parts.append(f"<{tag}>")
            for name, child_tag, child_repeated, child_complex, child_type in _fields(type_):
                child_value = item.get(name)
                if child_value is not None:
                    _element(parts, child_tag, child_repeated, child_complex, child_type, child_value, namespace)
            parts.append(f"</{tag}>")
        else:
            parts.append(f"<{tag}>{escape(_text(type_, item))}</{tag}>")


def _text(type_: Any, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime) and value.tzinfo is None and not value.microsecond:
        return value.isoformat()
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return str(type_.xmlvalue(value))
