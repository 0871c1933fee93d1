"""24SevenOffice (Finago Office): SOAP client (zeep, built from the WSDLs shipped in ``wsdl/``), errors,
mapping, settings, adapter and emulator. The WSDLs are the real ones (reference/24sevenoffice/SOURCE.md)."""
