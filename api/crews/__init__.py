"""Repair crews: members, skills, home base, working hours and zones (townships)."""
