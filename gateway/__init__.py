"""ruralwater gateway."""
