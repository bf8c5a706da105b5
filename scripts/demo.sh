#!/usr/bin/env bash
# The demo: installs what is missing, starts local Mosquitto and InfluxDB with data in ./var,
# runs the county simulator accelerated and the collector, and shows progress.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/python -m demo "$@"
