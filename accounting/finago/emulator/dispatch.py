"""One SOAP request, start to finish, in the order the real ASMX stack applies its checks.

1. read the envelope and find the operation (body element, and the SOAPAction for SOAP 1.1);
2. the session cookie (``ASP.NET_SessionId``): every operation but Login/HasSession/... needs a live one;
3. the identity's hourly limit (``APILimitRemaining``/``APILimitReset`` headers on every answer);
4. deserialisation: .NET value rules (enums, decimals...) then zeep's parse of the operation element;
5. the handler, and zeep's rendering of ``<OpResponse><OpResult>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from zeep.exceptions import Error as ZeepError
from zeep.helpers import serialize_object

from accounting.finago.emulator.call import PUBLIC_OPERATIONS, Call
from accounting.finago.emulator.common import clean
from accounting.finago.emulator.render import FAST_OPERATIONS, render_output
from accounting.finago.emulator.services import HANDLERS
from accounting.finago.emulator.soap import (
    SoapFault,
    SoapVersion,
    body_child,
    fault_xml,
    read_fault,
    response_xml,
    server_fault,
    unknown_action_fault,
)
from accounting.finago.emulator.state import FinagoState, RateDecision, Session
from accounting.finago.emulator.wsdl import ServiceSpec, UnreadableValue, client_for, schema_index

NOT_AUTHENTICATED = "Session is not authenticated"


@dataclass
class SoapReply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _operation(spec: ServiceSpec, version: SoapVersion, element: etree._Element, action: str | None) -> Any:
    client = client_for(spec)
    service = next(iter(client.wsdl.services.values()))
    port = service.ports[f"{spec.name}Soap12" if version == "1.2" else f"{spec.name}Soap"]
    qname = etree.QName(element)
    operation = port.binding._operations.get(qname.localname) if qname.namespace == spec.namespace else None
    if version == "1.1" and (operation is None or action != operation.soapaction):
        raise unknown_action_fault(action or "")
    if operation is None:
        raise read_fault(f"<{qname.localname} xmlns='{qname.namespace}'> was not expected.")
    return operation


def _limit_headers(decision: RateDecision | None) -> dict[str, str]:
    if decision is None:
        return {}
    return {"APILimitRemaining": str(decision.remaining), "APILimitReset": f"{decision.reset_at.isoformat()}Z"}


def _check_limit(state: FinagoState, identity_id: str) -> RateDecision:
    decision = state.count_request(identity_id)
    if decision.blocked:
        raise _Blocked(decision)
    return decision


class _Blocked(Exception):
    def __init__(self, decision: RateDecision) -> None:
        super().__init__("blocked")
        self.decision = decision


def _parse(spec: ServiceSpec, operation: Any, element: etree._Element) -> dict[str, Any]:
    try:
        schema_index(spec).check(element)
    except UnreadableValue as exc:
        raise read_fault(exc.message, exc.line) from exc
    client = client_for(spec)
    saving = _is_save(operation)
    if saving:
        _mark_empty_strings(spec, element)
    try:
        parsed = operation.input.body.parse(element, client.wsdl.types)
    except (ZeepError, ValueError, TypeError) as exc:
        raise read_fault(str(exc), element.sourceline or 1) from exc
    return _unmark(clean(serialize_object(parsed, dict), keep_empty=saving)) or {}


EMPTY_MARK = "\u2400empty\u2400"
"""Stands in for an empty string element while zeep parses a Save* request (zeep reads ``<Value></Value>`` as
None, the same as absent): a string a client sends empty is a value that clears the field."""


def _is_save(operation: Any) -> bool:
    return str(getattr(operation, "name", "")).startswith("Save")


def _mark_empty_strings(spec: ServiceSpec, element: etree._Element) -> None:
    nil = "{http://www.w3.org/2001/XMLSchema-instance}nil"
    for node, type_name in schema_index(spec)._walk(element, etree.QName(element).localname):
        if type_name == "string" and len(node) == 0 and not node.text and node.get(nil) not in ("true", "1"):
            node.text = EMPTY_MARK


def _unmark(value: Any) -> Any:
    if value == EMPTY_MARK:
        return ""
    if isinstance(value, dict):
        return {key: _unmark(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unmark(item) for item in value]
    return value


def _render(spec: ServiceSpec, operation: Any, version: SoapVersion, result: Any) -> bytes:
    output = operation.output.body
    if f"{spec.name}.{operation.name}" in FAST_OPERATIONS:  # large ledger reads: the same XML, much faster
        return response_xml(version, lambda body: render_output(body, output, result))
    result_name = output.type.elements[0][0]
    value = output(**{result_name: result})

    def render(body: etree._Element) -> None:
        output.render(body, value)

    return response_xml(version, render)


def handle(state: FinagoState, spec: ServiceSpec, version: SoapVersion, raw: bytes, action: str | None,
           cookie: str | None) -> SoapReply:
    """Answer one SOAP POST (never raises: faults are replies with HTTP 500)."""
    decision: RateDecision | None = None
    try:
        element = body_child(raw, version)
        operation = _operation(spec, version, element, action)
        name = f"{spec.name}.{operation.name}"
        state.record_operation(spec.name, operation.name)
        session: Session | None = state.session(cookie)
        if session is None and name not in PUBLIC_OPERATIONS:
            raise server_fault(NOT_AUTHENTICATED)
        if session is not None:
            decision = _check_limit(state, session.identity_id)
        args = _parse(spec, operation, element)
        handler = HANDLERS.get(spec.name, {}).get(operation.name)
        if handler is None:
            raise server_fault(f"The emulator does not implement {name}")
        result = handler(Call(state, session, cookie), args)
        if name == "Authenticate.Login" and session is None:
            decision = _check_limit(state, state.sessions[result].identity_id)
        return SoapReply(200, _render(spec, operation, version, result), _limit_headers(decision))
    except _Blocked as blocked:
        d = blocked.decision
        fault = server_fault(f"Limit exceeded by {d.exceeded_by}. Request is blocked. "
                             f"Quarantine ends at {d.reset_at:%Y-%m-%dT%H:%M:%S}")
        return SoapReply(500, fault_xml(fault, version), _limit_headers(d))
    except SoapFault as fault:
        return SoapReply(500, fault_xml(fault, version), _limit_headers(decision))
