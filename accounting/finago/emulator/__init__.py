"""A 24SevenOffice (Finago Office) SOAP emulator, serving the real WSDLs in ``accounting/finago/wsdl``.

Start with ``create_app()``; ``app.state.finago`` is the in-memory :class:`FinagoState`. See ``admin.py``
for the admin API, ``seed.py`` for the default data and credentials, ``dispatch.py`` for the order of the
protocol checks and ``ledger.py``/``invoicing.py`` for the accounting rules.
"""

from accounting.finago.emulator.app import create_app
from accounting.finago.emulator.seed import (
    CARD_PAYMENT_METHOD_ID,
    DEFAULT_APPLICATION_ID,
    DEFAULT_IDENTITY_ID,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    DEPARTMENT_ID,
    MISC_CATEGORY_ID,
    MISC_PRODUCT_ID,
    PROJECT_TYPE_ID,
    STATUS_ACTIVE_ID,
    STATUS_CLOSED_ID,
)
from accounting.finago.emulator.state import FinagoState

__all__ = [
    "CARD_PAYMENT_METHOD_ID",
    "DEFAULT_APPLICATION_ID",
    "DEFAULT_IDENTITY_ID",
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "DEPARTMENT_ID",
    "MISC_CATEGORY_ID",
    "MISC_PRODUCT_ID",
    "PROJECT_TYPE_ID",
    "STATUS_ACTIVE_ID",
    "STATUS_CLOSED_ID",
    "FinagoState",
    "create_app",
]
