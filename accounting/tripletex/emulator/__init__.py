"""A Tripletex API v2 emulator, faithful to Tripletex's OpenAPI spec (v2.74.00) for the endpoints
``accounting.tripletex`` uses. Start with ``create_app()``; ``app.state.tripletex`` is the in-memory company.
See ``admin.py`` for the admin API and ``seed.py`` for the default data and the seed document."""

from accounting.tripletex.emulator.app import create_app
from accounting.tripletex.emulator.seed import (
    API_EMPLOYEE_ID,
    COMPANY_ID,
    DEFAULT_CONSUMER_TOKEN,
    DEFAULT_EMPLOYEE_TOKEN,
    PAYMENT_TYPE_BANK,
    PAYMENT_TYPE_CARD,
    PAYMENT_TYPE_CASH,
)
from accounting.tripletex.emulator.state import PROJECT_MANAGER_TEMPLATES, RateLimitConfig, TripletexState

__all__ = [
    "API_EMPLOYEE_ID",
    "COMPANY_ID",
    "DEFAULT_CONSUMER_TOKEN",
    "DEFAULT_EMPLOYEE_TOKEN",
    "PAYMENT_TYPE_BANK",
    "PAYMENT_TYPE_CARD",
    "PAYMENT_TYPE_CASH",
    "PROJECT_MANAGER_TEMPLATES",
    "RateLimitConfig",
    "TripletexState",
    "create_app",
]
