#!/bin/sh
# Container healthcheck for the broker: log in as svc.health and read the retained
# $SYS/broker/uptime. Exits 0 only if the broker accepts connections, authenticates and
# delivers a message. The svc.health password is random, made by init-passwords.sh.
set -eu
passwd_dir=${MOSQUITTO_PASSWD_DIR:-/mosquitto/passwd}
exec mosquitto_sub -h "${MQTT_HEALTH_HOST:-127.0.0.1}" -p "${MQTT_HEALTH_PORT:-1883}" \
  -i "healthcheck-$$" -u svc.health -P "$(cat "$passwd_dir/healthcheck")" \
  -t '$SYS/broker/uptime' -C 1 -W 5 >/dev/null
