"""Grafana boards as code for bureau staff.

Boards are built with the official ``grafana-foundation-sdk`` builders (``boards/``), written
as JSON to ``dashboards/generated/`` (``python -m dashboards generate``), provisioned with the
stack (``dashboards/provisioning/``) or pushed into an existing Grafana
(``python -m dashboards deploy``). Every panel query is checked against real InfluxDB and
PostgreSQL data with Grafana's own macros expanded (``expand.py``); ``python -m dashboards
preview`` renders the main panels from those query results. See docs/dashboards.md.
"""
