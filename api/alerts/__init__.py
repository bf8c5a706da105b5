"""Alert intake from the analysis layer (common/alerts.py is the contract)."""
