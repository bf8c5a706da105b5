"""The live demo: local Mosquitto and InfluxDB, the collector, and the county simulator."""
