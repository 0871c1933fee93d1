"""Typed search attributes the operators filter on in the Temporal UI and CLI.

Never names, e-mails or amounts: search attributes are not encrypted by a payload codec.
Registered at dev-server start (workers/devstack.py) and by `qondor-sync setup` on a cluster.
"""

from temporalio.common import SearchAttributeKey

OFFICE_ID = SearchAttributeKey.for_int("OfficeId")
QONDOR_INVOICE_ID = SearchAttributeKey.for_int("QondorInvoiceId")
PROJECT_NUMBER = SearchAttributeKey.for_keyword("ProjectNumber")
ACCOUNTING_SYSTEM = SearchAttributeKey.for_keyword("AccountingSystem")
INVOICE_KIND = SearchAttributeKey.for_keyword("InvoiceKind")
SYNC_STATE = SearchAttributeKey.for_keyword("SyncState")

ALL = (OFFICE_ID, QONDOR_INVOICE_ID, PROJECT_NUMBER, ACCOUNTING_SYSTEM, INVOICE_KIND, SYNC_STATE)
