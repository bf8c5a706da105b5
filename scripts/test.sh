#!/usr/bin/env bash
# The test command: installs what is missing, then runs the suite against real services.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
# Two workers: the outage tests mostly wait, so the other worker runs meanwhile.
exec .venv/bin/python -m pytest -n 2 --dist worksteal "$@"
