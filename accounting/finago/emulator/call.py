"""What a SOAP handler gets: the state, the caller's session and the parsed (cleaned) request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accounting.finago.emulator.state import FinagoState, Session


@dataclass
class Call:
    state: FinagoState
    session: Session | None
    session_cookie: str | None


Handler = Callable[[Call, dict[str, Any]], Any]
"""``handler(call, args) -> result``: ``args`` are the operation's parameters (e.g. ``{"searchParams": {...}}``);
the result is the ``<Op>Result`` value (dicts in the WSDL's shape), None for an empty result."""

PUBLIC_OPERATIONS: frozenset[str] = frozenset({
    "Authenticate.Login", "Authenticate.HasSession", "Authenticate.GetIdentitiesWithCredential",
    "Authenticate.GetIdentitiesWithCredentialByService", "Authenticate.AuthenticateByToken",
})
"""Operations that run without a session; everything else needs the ``ASP.NET_SessionId`` cookie."""
