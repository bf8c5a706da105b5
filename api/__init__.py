"""ruralwater api."""
