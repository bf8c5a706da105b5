"""Notifications to crews and dispatchers: channel plugins (generic JSON webhook, WeCom and
DingTalk group robots), an httpx sender with retries, and reminders that repeat and escalate
until someone acknowledges. See api/notify/README.md."""
