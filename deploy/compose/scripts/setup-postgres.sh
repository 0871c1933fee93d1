#!/bin/sh
# Creates Temporal's two databases (temporal, temporal_visibility) and brings their schemas up to the
# version shipped in the admin-tools image. Safe to run again on an existing volume (create is allowed
# to fail when the database exists; update-schema applies only missing versions).
set -eu
echo "waiting for PostgreSQL"
until nc -z -w 10 postgresql 5432; do sleep 1; done

# The password comes from SQL_PASSWORD in the environment (docker-compose.yml).
tool() { temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal "$@"; }
schema=/etc/temporal/schema/postgresql/v12

tool --db temporal create || true
tool --db temporal setup-schema -v 0.0
tool --db temporal update-schema -d "$schema/temporal/versioned"

tool --db temporal_visibility create || true
tool --db temporal_visibility setup-schema -v 0.0
tool --db temporal_visibility update-schema -d "$schema/visibility/versioned"
echo "Temporal schemas are up to date"
