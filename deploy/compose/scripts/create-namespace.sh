#!/bin/sh
# Creates the namespace (if missing) and registers qondor-sync's six search attributes (creating one that
# exists with the same type succeeds, so this is safe to run again).
set -eu
: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
export TEMPORAL_ADDRESS TEMPORAL_NAMESPACE

until temporal operator cluster health; do echo "waiting for Temporal"; sleep 2; done
temporal operator namespace describe -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$TEMPORAL_NAMESPACE" --retention 30d

# A namespace just created takes a moment to be visible everywhere: retry each registration.
attribute() {
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    temporal operator search-attribute create --name "$1" --type "$2" && return 0
    sleep 2
  done
  return 1
}
attribute OfficeId Int
attribute QondorInvoiceId Int
attribute ProjectNumber Keyword
attribute AccountingSystem Keyword
attribute InvoiceKind Keyword
attribute SyncState Keyword
echo "namespace $TEMPORAL_NAMESPACE and search attributes ready"
