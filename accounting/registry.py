"""The one list of accounting systems: what the worker, office configuration, CLI, demo, dev stack and test
harness iterate. Adding a system is adding a package under ``accounting/`` and one entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from accounting.adapter import AccountingAdapter
from accounting.finago.adapter import FinagoAdapter
from accounting.finago.client import FinagoClient
from accounting.finago.emulator import create_app as create_finago_emulator
from accounting.finago.emulator import seed as finago_seed
from accounting.tripletex.adapter import TripletexAdapter
from accounting.tripletex.client import TripletexClient
from accounting.tripletex.emulator import DEFAULT_CONSUMER_TOKEN, DEFAULT_EMPLOYEE_TOKEN, PAYMENT_TYPE_CARD
from accounting.tripletex.emulator import create_app as create_tripletex_emulator
from activities.common import AsyncStore, ClientBuilder, OfficeClients, SecretReader
from domain.config import AccountingSystem, OfficeConfig


@dataclass(frozen=True)
class SystemSpec:
    """Everything the rest of the service needs to know about one accounting system."""

    system: AccountingSystem
    label: str
    build_client: ClientBuilder
    build_adapter: Callable[[OfficeClients, AsyncStore], AccountingAdapter]
    create_emulator: Callable[[], Any]
    """The emulator's ASGI app (for tests, the demo and ``qondor-sync emulator NAME``)."""
    emulator_office: Callable[[str], dict[str, Any]]
    """The office-file entries of an office whose accounting system is this emulator at the given URL."""
    emulator_secrets: dict[str, str]
    """The emulator's default credentials, by the environment variable its office entries name."""

    @property
    def name(self) -> str:
        return self.system.value

    @property
    def rate_env(self) -> str:
        """Environment variable with the server-side rate limit of the system's task queue."""
        return f"QONDOR_SYNC_{self.name.upper()}_ACTIVITIES_PER_SECOND"


def _tripletex_client(
    office: OfficeConfig, secret: SecretReader, transport: httpx.AsyncBaseTransport | None
) -> TripletexClient:
    settings = office.tripletex
    assert settings is not None, "the office configuration guarantees the settings of its system"
    return TripletexClient(
        settings.base_url,
        secret("tripletex.consumer_token", settings.consumer_token.resolve),
        secret("tripletex.employee_token", settings.employee_token.resolve),
        settings.company_id,
        transport=transport,
    )


def _finago_client(
    office: OfficeConfig, secret: SecretReader, transport: httpx.AsyncBaseTransport | None
) -> FinagoClient:
    settings = office.finago
    assert settings is not None, "the office configuration guarantees the settings of its system"
    return FinagoClient(
        settings.api_base_url,
        settings.webservices_base_url,
        secret("accounting.application_id", settings.application_id.resolve),
        secret("accounting.username", settings.username.resolve),
        secret("accounting.password", settings.password.resolve),
        settings.identity_id,
        transport=transport,
        max_calls_per_hour=settings.max_calls_per_hour,
    )


def _tripletex_office(url: str) -> dict[str, Any]:
    return {
        "accounting_system": "tripletex",
        "invoice_mode": "invoice",
        "card_payment_type_id": PAYMENT_TYPE_CARD,
        "article_mapping": {
            "3000": {"vat_type": "3"},  # 25 %
            "3100": {"vat_type": "31"},  # 15 %
            "3200": {"vat_type": "33"},  # 12 %
        },
        "tripletex": {
            "base_url": f"{url}/v2",
            "consumer_token": {"env": "QONDOR_SYNC_DEMO_TRIPLETEX_CONSUMER_TOKEN"},
            "employee_token": {"env": "QONDOR_SYNC_DEMO_TRIPLETEX_EMPLOYEE_TOKEN"},
        },
    }


def _finago_office(url: str) -> dict[str, Any]:
    return {
        "accounting": {
            "system": "finago",
            "api_base_url": url,
            "webservices_base_url": url,
            "application_id": {"env": "QONDOR_SYNC_DEMO_FINAGO_APPLICATION_ID"},
            "username": {"env": "QONDOR_SYNC_DEMO_FINAGO_USERNAME"},
            "password": {"env": "QONDOR_SYNC_DEMO_FINAGO_PASSWORD"},
            "department_id": finago_seed.DEPARTMENT_ID,
            "misc_product_id": finago_seed.MISC_PRODUCT_ID,
            "misc_product_category_id": finago_seed.MISC_CATEGORY_ID,
            "card_payment_method_id": finago_seed.CARD_PAYMENT_METHOD_ID,
            "article_mapping": {
                "3000": {"category_id": finago_seed.MISC_CATEGORY_ID},  # 25 %
                "3100": {"category_id": 3},  # Servering, 15 %
                "3200": {"category_id": 2},  # Overnatting, 12 %
            },
        }
    }


SYSTEMS: dict[AccountingSystem, SystemSpec] = {
    spec.system: spec
    for spec in (
        SystemSpec(
            system=AccountingSystem.TRIPLETEX,
            label="Tripletex",
            build_client=_tripletex_client,
            build_adapter=lambda clients, store: TripletexAdapter(clients, store),
            create_emulator=create_tripletex_emulator,
            emulator_office=_tripletex_office,
            emulator_secrets={
                "QONDOR_SYNC_DEMO_TRIPLETEX_CONSUMER_TOKEN": DEFAULT_CONSUMER_TOKEN,
                "QONDOR_SYNC_DEMO_TRIPLETEX_EMPLOYEE_TOKEN": DEFAULT_EMPLOYEE_TOKEN,
            },
        ),
        SystemSpec(
            system=AccountingSystem.FINAGO,
            label="24SevenOffice",
            build_client=_finago_client,
            build_adapter=lambda clients, store: FinagoAdapter(clients, store),
            create_emulator=create_finago_emulator,
            emulator_office=_finago_office,
            emulator_secrets={
                "QONDOR_SYNC_DEMO_FINAGO_APPLICATION_ID": finago_seed.DEFAULT_APPLICATION_ID,
                "QONDOR_SYNC_DEMO_FINAGO_USERNAME": finago_seed.DEFAULT_USERNAME,
                "QONDOR_SYNC_DEMO_FINAGO_PASSWORD": finago_seed.DEFAULT_PASSWORD,
            },
        ),
    )
}


def client_builders() -> dict[str, ClientBuilder]:
    return {spec.name: spec.build_client for spec in SYSTEMS.values()}
