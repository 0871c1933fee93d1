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

temporal operator search-attribute create --name OfficeId --type Int
temporal operator search-attribute create --name QondorInvoiceId --type Int
temporal operator search-attribute create --name ProjectNumber --type Keyword
temporal operator search-attribute create --name AccountingSystem --type Keyword
temporal operator search-attribute create --name InvoiceKind --type Keyword
temporal operator search-attribute create --name SyncState --type Keyword
echo "namespace $TEMPORAL_NAMESPACE and search attributes ready"
