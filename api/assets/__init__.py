"""The asset register: townships, villages, schemes, wells, tanks, DMAs, pipelines,
gateways, households and devices (common/register.py is the import format)."""
