#!/usr/bin/env bash
# Installs everything ruralwater needs on a fresh Debian machine (run as root or with sudo):
# the real services the demo and tests start (Mosquitto, InfluxDB, PostgreSQL), the compose
# validator, Chromium and its driver (the crew page's browser test), wrk (the API benchmark),
# and a Python virtual environment in .venv with the project and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto mosquitto-clients influxdb influxdb-client docker-compose
              chromium chromium-driver wrk)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# PostgreSQL: the API's production database, and its tests run on it. Most machines here run
# one on 127.0.0.1:5432 with trust auth; where none answers, install and start Debian's, with
# trust for local TCP connections (a test machine, not a server: never do this in production).
postgres_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! postgres_answers; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! dpkg -s postgresql >/dev/null 2>&1; then
    echo "bootstrap: installing postgresql"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! $SUDO grep -q "ruralwater-tests" "$hba"; then
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust # ruralwater-tests' "$hba"
  fi
  $SUDO pg_ctlcluster "$version" main start 2>/dev/null || $SUDO pg_ctlcluster "$version" main reload
  for _ in $(seq 1 30); do postgres_answers && break; sleep 1; done
  postgres_answers || { echo "bootstrap: PostgreSQL did not start" >&2; exit 1; }
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.ruralwater-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
