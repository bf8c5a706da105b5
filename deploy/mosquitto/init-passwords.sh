#!/bin/sh
# One-shot: write the broker's service users into the password file from the secrets.
#
# Run by the mosquitto-init service before the broker starts (docker-compose.yml). The file
# lives in a volume, never in the repository. Existing entries (gateway users added with
# add-gateway.sh) are kept; the service users' passwords are set to the current secrets.
# The healthcheck user gets a random password made once and kept next to the file.
set -eu
: "${MQTT_COLLECTOR_PASSWORD:?MQTT_COLLECTOR_PASSWORD is not set}"
: "${MQTT_BUREAU_PASSWORD:?MQTT_BUREAU_PASSWORD is not set}"
passwd_dir=${MOSQUITTO_PASSWD_DIR:-/mosquitto/passwd}
passwd_file="$passwd_dir/passwd"
health_file="$passwd_dir/healthcheck"

umask 077
mkdir -p "$passwd_dir"
[ -f "$passwd_file" ] || : >"$passwd_file"
if [ ! -s "$health_file" ]; then
  # head closes the pipe after 32 bytes; tr then dies of SIGPIPE, which is expected.
  (tr -dc 'A-Za-z0-9' </dev/urandom || true) | head -c 32 >"$health_file"
fi

mosquitto_passwd -b "$passwd_file" svc.collector "$MQTT_COLLECTOR_PASSWORD"
mosquitto_passwd -b "$passwd_file" svc.bureau "$MQTT_BUREAU_PASSWORD"
mosquitto_passwd -b "$passwd_file" svc.health "$(cat "$health_file")"
echo "mosquitto-init: service users written to $passwd_file"
