"""ruralwater analysis."""
