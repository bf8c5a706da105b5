"""Repair tickets: created from alerts by rules or by hand, a checked lifecycle, and
verification from telemetry."""
