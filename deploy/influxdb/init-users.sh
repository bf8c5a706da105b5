#!/bin/sh
# Sourced by the influxdb:1.8 image's first-start init (/docker-entrypoint-initdb.d), after it
# made the database, the admin, the collector (INFLUXDB_USER) and Grafana's read-only user
# (INFLUXDB_READ_USER). $INFLUX_CMD is its influx client, signed in as the admin.
#
# analysis: reads telemetry and writes its KPIs and alert states back (ALL on ruralwater).
# api:      reads telemetry to verify repairs (READ only).
: "${INFLUXDB_ANALYSIS_PASSWORD:?INFLUXDB_ANALYSIS_PASSWORD is not set}"
: "${INFLUXDB_API_PASSWORD:?INFLUXDB_API_PASSWORD is not set}"
$INFLUX_CMD "CREATE USER analysis WITH PASSWORD '$INFLUXDB_ANALYSIS_PASSWORD'"
$INFLUX_CMD "GRANT ALL ON \"$INFLUXDB_DB\" TO analysis"
$INFLUX_CMD "CREATE USER api WITH PASSWORD '$INFLUXDB_API_PASSWORD'"
$INFLUX_CMD "GRANT READ ON \"$INFLUXDB_DB\" TO api"
