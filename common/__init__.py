"""What every ruralwater package shares: settings, the wire contract and InfluxDB access.

- :mod:`common.settings` -- the one settings object, read from ``RURALWATER_*`` variables.
- :mod:`common.contract` -- MQTT topics and payload models (the gateway -> collector contract).
- :mod:`common.schema`   -- the InfluxDB schema: measurements, tags, fields, reading -> point.
- :mod:`common.influx`   -- a small client for the InfluxDB v1 HTTP API (/write, /query).
"""
