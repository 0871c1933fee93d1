"""An office's Tripletex settings: the ``[office.accounting]`` table when ``system = "tripletex"``.

A leaf module (it imports pydantic and ``SecretRef`` only), so ``domain.config`` can build its discriminated
union from it without an import cycle. Files written before ``[office.accounting]`` existed give the same fields
in ``[office.tripletex]``; ``domain.config`` reads that form too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.secrets import SecretRef


class TripletexSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: Literal["tripletex"] = "tripletex"
    base_url: str = "https://tripletex.no/v2"
    consumer_token: SecretRef
    employee_token: SecretRef
    company_id: int = Field(default=0, description="0 = the token owner's company; else an accountant client")
