"""The collector: MQTT (Mosquitto) -> validated telemetry -> InfluxDB, losing nothing.

- :mod:`collector.ingest`     pure: topic + payload bytes -> line-protocol points + rejections
- :mod:`collector.deadletter` SQLite store of refused input, raw bytes and reason
- :mod:`collector.spool`      bounded on-disk queue of batches while InfluxDB is down
- :mod:`collector.sequence`   per-gateway gap and duplicate counting
- :mod:`collector.writer`     batching, retries, spooling and acknowledgement after durable write
- :mod:`collector.health`     ``/health`` (JSON) and ``/metrics`` (Prometheus text)
- :mod:`collector.service`    the MQTT wiring (paho-mqtt 2.x, MQTT v5, manual acks)
"""
