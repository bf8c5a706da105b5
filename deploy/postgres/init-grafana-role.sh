#!/bin/sh
# Run by the postgres image's first-start init (/docker-entrypoint-initdb.d) as the database
# owner. Grafana's Tickets data source signs in as `grafana`, which may only read: every
# table the API's migrations (run as the owner) create is readable, nothing is writable.
set -eu
: "${TICKETS_DB_GRAFANA_PASSWORD:?TICKETS_DB_GRAFANA_PASSWORD is not set}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=password="$TICKETS_DB_GRAFANA_PASSWORD" <<'SQL'
CREATE ROLE grafana LOGIN PASSWORD :'password';
GRANT CONNECT ON DATABASE ruralwater TO grafana;
GRANT USAGE ON SCHEMA public TO grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
SQL
