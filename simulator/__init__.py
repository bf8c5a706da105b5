"""ruralwater simulator."""
