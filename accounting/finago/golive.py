"""24SevenOffice's office-level go-live checks (``accounting/golive.py``): the login, the department, the misc
product, the product behind every mapped article, the card payment method and the project statuses "Aktiv" and
"Avsluttet". Each goes through the rule the sync uses (``product_for_line``, the adapter's status lookup and
catalog, ``card_method_problem``), so the check and the sync cannot disagree; nothing is written."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from accounting.adapter import Finding
from accounting.finago.mapping import ACTIVE_STATUS, CLOSED_STATUS, product_for_line
from accounting.finago.settings import FinagoSettings
from domain.config import OfficeConfig
from domain.errors import ConfigurationError, CredentialsRefused
from domain.qondor import InvoiceLine

if TYPE_CHECKING:
    from accounting.finago.adapter import FinagoAdapter


def card_method_problem(settings: FinagoSettings, office: OfficeConfig, what: str) -> ConfigurationError | None:
    """Card payments are invoiced paid with the office's payment method; without one they wait (the sync's
    validation and the go-live check say it in the same words)."""
    if settings.card_payment_method_id is not None:
        return None
    return ConfigurationError(
        f"{what}: office {office.id} ({office.name}) has no card_payment_method_id, so the card payment cannot be "
        "registered as paid. Set it in the office file to 24SevenOffice's payment method for card payments, then "
        "resync."
    )


def _line(article: str | None) -> InvoiceLine:
    """A line of an article, to ask the sync's product rule which product it gets."""
    zero = Decimal(0)
    return InvoiceLine(line_no=0, article_number=article, description="", quantity=Decimal(1),
                       unit_price_excl_vat=zero, vat_percentage=zero, amount_excl_vat=zero, vat_amount=zero,
                       amount_incl_vat=zero)


async def findings(adapter: FinagoAdapter, office: OfficeConfig) -> list[Finding]:
    settings = adapter._settings(office.id)
    client = adapter._client(office.id)
    try:
        await client.login()
    except CredentialsRefused as exc:
        return [Finding("credentials", False, f"24SevenOffice refused the login ({exc}).",
                        "Set accounting.application_id, username and password (and identity_id) of the office to a "
                        "valid API user.")]
    found = [Finding("credentials", True, "24SevenOffice accepted the login")]
    departments = {int(d["Id"]): d for d in await client.departments() if d.get("Id") is not None}
    if settings.department_id in departments:
        found.append(Finding("department", True, f"department {settings.department_id} "
                             f"{departments[settings.department_id].get('Name') or ''}".strip()))
    else:
        found.append(Finding("department", False, f"department_id {settings.department_id} is no department",
                             f"Set department_id to one of {', '.join(map(str, sorted(departments))) or '(none)'}."))
    catalog = await adapter._catalogs.get(office.id)

    def product_of(article: str | None):
        return product_for_line(_line(article), settings, catalog.products, catalog.by_category, catalog.category_by_no)

    try:
        misc = product_of(None)
        found.append(Finding("misc product", True, f"product {misc.id} {misc.name} ({misc.tax_rate} % VAT)"))
    except ConfigurationError as exc:
        found.append(Finding.of_error("misc product", exc))
    for article, mapping in sorted(settings.article_mapping.items()):
        check = f"article {article}"
        wanted = (f"product {mapping.product_id}" if mapping.product_id is not None
                  else f"category {mapping.category_id}")
        if mapping.product_id not in catalog.products and mapping.category_id not in catalog.by_category:
            # product_for_line would pass over the mapping silently (to the category by number, or the misc product).
            found.append(Finding(check, False, f"maps to {wanted}, which has no active product in 24SevenOffice, so "
                                 "its lines would get another product",
                                 "Activate the product (or a product of the category) in 24SevenOffice, or fix "
                                 "article_mapping in the office file."))
            continue
        try:
            product = product_of(article)
        except ConfigurationError as exc:
            found.append(Finding.of_error(check, exc))
        else:
            found.append(
                Finding(check, True, f"{wanted}: product {product.id} {product.name} ({product.tax_rate} % VAT)")
            )
    problem = card_method_problem(settings, office, f"Office {office.id}")
    if problem is not None:
        found.append(Finding.of_error("card payment method", problem))
    else:
        methods = {int(m["Id"]) for m in await client.payment_methods() if m.get("Id") is not None}
        ok = settings.card_payment_method_id in methods
        found.append(Finding("card payment method", ok, f"payment method {settings.card_payment_method_id}"
                             + ("" if ok else " does not exist in 24SevenOffice"),
                             None if ok else f"Set card_payment_method_id to one of {sorted(methods)}."))
    for status in (ACTIVE_STATUS, CLOSED_STATUS):
        try:
            await adapter._status_id(office.id, status, then="run the check again")
            found.append(Finding(f"project status {status}", True, f"project status '{status}' exists"))
        except ConfigurationError as exc:
            found.append(Finding.of_error(f"project status {status}", exc))
    return found
