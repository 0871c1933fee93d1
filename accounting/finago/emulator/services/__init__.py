"""SOAP operation handlers, one module per ASMX service; ``HANDLERS`` maps service name -> operation -> handler."""

from accounting.finago.emulator.call import Handler
from accounting.finago.emulator.services import auth, company, invoice, misc, product, project, transaction

HANDLERS: dict[str, dict[str, Handler]] = {
    "Authenticate": auth.OPERATIONS,
    "CompanyService": company.OPERATIONS,
    "ProductService": product.OPERATIONS,
    "ProjectService": project.OPERATIONS,
    "InvoiceService": invoice.OPERATIONS,
    "TransactionService": transaction.OPERATIONS,
    "ClientService": misc.CLIENT_OPERATIONS,
    "AccountService": misc.ACCOUNT_OPERATIONS,
}
