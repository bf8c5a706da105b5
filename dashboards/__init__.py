"""ruralwater dashboards."""
