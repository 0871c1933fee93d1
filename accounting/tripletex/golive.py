"""Tripletex's office-level go-live checks (``accounting/golive.py``): the tokens, the card payment type, and every
VAT type and product the office's article mapping names. Reads through the adapter's own lookups (VAT types by
code, products by number), so what the check finds is what the sync will find; nothing is written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accounting.adapter import Finding
from accounting.tripletex.mapping import card_payment_problem
from domain.config import OfficeConfig
from domain.errors import CredentialsRefused

if TYPE_CHECKING:
    from accounting.tripletex.adapter import TripletexAdapter


async def findings(adapter: TripletexAdapter, office: OfficeConfig) -> list[Finding]:
    client = adapter._client(office.id)
    try:
        vat_types = await adapter._vat_type_map(office.id)
    except CredentialsRefused as exc:
        return [Finding("credentials", False, f"Tripletex refused the office's tokens ({exc}).",
                        "Set tripletex.consumer_token and tripletex.employee_token (and company_id) of the office to "
                        "a valid token pair.")]
    found = [Finding("credentials", True, "Tripletex accepted the token pair")]
    what = f"Office {office.id}"
    problem = card_payment_problem(office, what)
    if problem is not None:
        found.append(Finding.of_error("card payment type", problem))
    else:
        types = {int(t["id"]): t for t in await client.payment_types()}
        if office.card_payment_type_id in types:
            name = types[office.card_payment_type_id].get("description") or ""
            found.append(
                Finding("card payment type", True, f"payment type {office.card_payment_type_id} {name}".strip())
            )
        else:
            found.append(Finding(
                "card payment type", False,
                f"card_payment_type_id {office.card_payment_type_id} is no payment type in Tripletex",
                f"Set card_payment_type_id to one of {', '.join(map(str, sorted(types)))} (the card payment type).",
            ))
    for article, mapping in sorted(office.article_mapping.items()):
        check = f"article {article}"
        if mapping.vat_type is not None:
            vat = vat_types.get(mapping.vat_type)
            if vat is None:
                found.append(Finding(check, False, f"maps to VAT code {mapping.vat_type}, which Tripletex lacks",
                                     "Fix article_mapping in the office file to an existing VAT code."))
            else:
                found.append(Finding(check, True, f"VAT code {mapping.vat_type} ({vat[1]} %)"))
        elif mapping.product is not None:
            if await adapter._product_id(office.id, mapping.product) is None:
                found.append(Finding(check, False, f"maps to product {mapping.product}, which Tripletex does not have",
                                     "Create the product in Tripletex or fix article_mapping in the office file."))
            else:
                found.append(Finding(check, True, f"product {mapping.product}"))
    return found
