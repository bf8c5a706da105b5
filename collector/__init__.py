"""ruralwater collector."""
