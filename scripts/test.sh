#!/usr/bin/env bash
# The test command: installs what is missing, then runs the suite against real services.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
