"""Authenticate: Login / HasSession and the identity operations."""

from __future__ import annotations

from typing import Any

from accounting.finago.emulator.call import Call, Handler
from accounting.finago.emulator.soap import server_fault
from accounting.finago.emulator.state import FinagoState, LoginRefused


def login(call: Call, args: dict[str, Any]) -> str:
    credential = args.get("credential") or {}
    try:
        session = call.state.login(credential.get("ApplicationId"), credential.get("Username"),
                                   credential.get("Password"), credential.get("IdentityId"))
    except LoginRefused as exc:
        raise server_fault(str(exc)) from exc
    return session.id


def has_session(call: Call, args: dict[str, Any]) -> bool:
    return call.session is not None


def _identity(state: FinagoState, identity_id: str, current: str | None, default: str) -> dict[str, Any]:
    identity = state.identities[identity_id]
    return {
        "Id": identity.id, "User": {"ContactId": 1, "Name": identity.user_name, "EmployeeId": 1},
        "Client": {"Id": identity.client_id, "Name": identity.client_name},
        "IsCurrent": identity_id == current, "IsDefault": identity_id == default, "IsProtected": False,
        "IsDisabled": False,
    }


def _identities_of(call: Call, identity_ids: list[str], current: str | None) -> dict[str, Any]:
    return {"Identity": [_identity(call.state, i, current, identity_ids[0]) for i in identity_ids]}


def _session_identities(call: Call) -> list[str]:
    assert call.session is not None
    return next((c.identity_ids for c in call.state.credentials if c.username == call.session.username),
                [call.session.identity_id])


def get_identities(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    assert call.session is not None
    return _identities_of(call, _session_identities(call), call.session.identity_id)


def get_identity(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    assert call.session is not None
    ids = _session_identities(call)
    return _identity(call.state, call.session.identity_id, call.session.identity_id, ids[0])


def set_identity_by_id(call: Call, args: dict[str, Any]) -> bool:
    assert call.session is not None
    wanted = str(args.get("identityId") or "").lower()
    if wanted not in _session_identities(call):
        raise server_fault("Provided IdentityId is blocked. Please use GetIdentitiesWithCredential to get a list of "
                           "available Identities and reauthenticate with a valid IdentityId")
    call.session.identity_id = wanted
    return True


def set_identity(call: Call, args: dict[str, Any]) -> bool:
    return set_identity_by_id(call, {"identityId": (args.get("identity") or {}).get("Id")})


def identities_with_credential(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    credential = args.get("credential") or {}
    found = call.state.credential_of(credential.get("Username"), credential.get("Password"),
                                     credential.get("ApplicationId"))
    if found is None:
        raise server_fault("Invalid username or password")
    return _identities_of(call, found.identity_ids, None)


OPERATIONS: dict[str, Handler] = {
    "Login": login,
    "HasSession": has_session,
    "GetIdentities": get_identities,
    "GetIdentity": get_identity,
    "SetIdentityById": set_identity_by_id,
    "SetIdentity": set_identity,
    "GetIdentitiesWithCredential": identities_with_credential,
    "GetIdentitiesWithCredentialByService": identities_with_credential,
}
