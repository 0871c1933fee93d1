"""An office's 24SevenOffice settings: the ``[office.accounting]`` table when ``system = "finago"``.

The options follow the seed's configuration table (Days backwards, Send to factoring directly, Online
payment method, Department ID, Misc product ID / category ID). Credentials are secret references,
resolved only where the client is built.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.secrets import SecretRef


class FinagoArticleMapping(BaseModel):
    """How a Qondor article becomes an order row's product: a product id, or a product category (the first
    active product of that category). Unmapped articles use the misc product/category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: int | None = None
    category_id: int | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> FinagoArticleMapping:
        # Both or neither would leave the row's product to a guess; the file says which one it means.
        if (self.product_id is None) == (self.category_id is None):
            raise ValueError("map an article to exactly one of 'product_id' or 'category_id'")
        return self


class FinagoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: Literal["finago"] = "finago"
    api_base_url: str = "https://api.24sevenoffice.com"
    """Base of the services on the api host (Authenticate, Company, Invoice, Product, Client, Transaction)."""
    webservices_base_url: str = "https://webservices.24sevenoffice.com"
    """Base of the services on the webservices host (Project, Person, Attachment)."""
    application_id: SecretRef
    username: SecretRef
    password: SecretRef
    identity_id: str | None = Field(default=None, description="the identity (client) to log in on; None = default")
    department_id: int = Field(description="the department that receives Qondor invoices")
    misc_product_id: int = Field(description="product for lines whose article is not mapped")
    misc_product_category_id: int = Field(description="category of the misc product")
    card_payment_method_id: int | None = Field(default=None, description="payment method for card payments")
    send_to_factoring: bool = Field(default=False, description="invoice and send to factoring at once")
    invoice_lookback_days: int = Field(default=30, ge=1, description="how far back the payment sweep looks")
    max_calls_per_hour: int = Field(
        default=7000, gt=0, description="client-side pacing under 24SevenOffice's 7200 calls/hour per identity"
    )
    article_mapping: dict[str, FinagoArticleMapping] = Field(default_factory=dict)
