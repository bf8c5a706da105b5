"""The audit trail: every write, who did it, when, what changed and why."""
