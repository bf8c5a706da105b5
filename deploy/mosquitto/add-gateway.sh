#!/usr/bin/env bash
# Add a gateway's MQTT user (or change its password) in the broker's password file.
#
#   deploy/mosquitto/add-gateway.sh <gateway-id>                  # the compose deployment
#   deploy/mosquitto/add-gateway.sh <gateway-id> --password-file FILE   # a local file
#
# The username is the gateway id; the ACL then lets it publish only under
# ruralwater/v1/<gateway-id>/ and read only its own commands. The password comes from
# $GATEWAY_PASSWORD, or a random one is made and printed once: put it in the gateway's
# RURALWATER_MQTT__PASSWORD. In compose mode the broker is sent SIGHUP to reload the file.
set -euo pipefail

usage() {
  echo "usage: $0 <gateway-id> [--password-file FILE]" >&2
  exit 2
}

[ $# -ge 1 ] || usage
gateway_id=$1
shift
password_file=""
if [ $# -gt 0 ]; then
  [ "$1" = "--password-file" ] && [ $# -eq 2 ] || usage
  password_file=$2
fi

# The contract's GatewayId (common/contract.py): it is also a topic level, so no '/', '+',
# '#' or '.' (service users are the ones with a dot).
if ! [[ $gateway_id =~ ^[a-z0-9][a-z0-9_-]{0,63}$ ]]; then
  echo "add-gateway: '$gateway_id' is not a gateway id (lowercase letters, digits, _ and -," \
    "at most 64, starting with a letter or digit)" >&2
  exit 2
fi

generated=""
if [ -z "${GATEWAY_PASSWORD:-}" ]; then
  GATEWAY_PASSWORD=$( (tr -dc 'A-Za-z0-9' </dev/urandom || true) | head -c 24)
  generated=1
fi
export GATEWAY_ID=$gateway_id GATEWAY_PASSWORD

if [ -n "$password_file" ]; then
  [ -f "$password_file" ] || (umask 077 && : >"$password_file")
  mosquitto_passwd -b "$password_file" "$GATEWAY_ID" "$GATEWAY_PASSWORD"
else
  cd "$(dirname "$0")/../.."
  # The init service's image and volume; the password travels in the environment, not argv
  # of a host process.
  docker-compose run --rm --no-deps -e GATEWAY_ID -e GATEWAY_PASSWORD --entrypoint sh \
    mosquitto-init -c \
    'mosquitto_passwd -b /mosquitto/passwd/passwd "$GATEWAY_ID" "$GATEWAY_PASSWORD"'
  docker-compose kill -s SIGHUP mosquitto
fi

echo "gateway user '$gateway_id' added"
if [ -n "$generated" ]; then
  echo "password (shown once): $GATEWAY_PASSWORD"
fi
