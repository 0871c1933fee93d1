"""Local emulator of Qondor's API: the public master-data subset plus the designed invoicing-queue extension.

See docs/qondor-invoice-api.md for the contract and the admin API.
"""

from emulators.qondor.app import DEFAULT_SUBSCRIPTION_KEY, create_app
from emulators.qondor.state import QondorState, RateLimitConfig

__all__ = ["DEFAULT_SUBSCRIPTION_KEY", "QondorState", "RateLimitConfig", "create_app"]
