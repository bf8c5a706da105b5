"""One settings object, read from RURALWATER_* variables; production demands real secrets."""

from __future__ import annotations

import pytest

from common.settings import MissingSecrets, Settings


def test_nested_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RURALWATER_MQTT__PORT", "18830")
    monkeypatch.setenv("RURALWATER_INFLUX__URL", "http://influx:8086")
    monkeypatch.setenv("RURALWATER_COLLECTOR__SHARE_GROUP", "")
    settings = Settings()
    assert settings.mqtt.port == 18830
    assert settings.influx.url == "http://influx:8086"
    assert settings.collector.share_group == ""


def test_development_runs_on_embedded_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.environment == "development"
    assert settings.mqtt.password is None


def test_production_refuses_missing_or_placeholder_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RURALWATER_ENVIRONMENT", "production")
    monkeypatch.setenv("RURALWATER_MQTT__PASSWORD", "changeme")
    with pytest.raises(MissingSecrets, match="RURALWATER_MQTT__PASSWORD"):
        Settings().require_secrets("mqtt", "influx")
    monkeypatch.setenv("RURALWATER_MQTT__PASSWORD", "s3cure-collector-pass")
    with pytest.raises(MissingSecrets, match="RURALWATER_INFLUX__PASSWORD"):
        Settings().require_secrets("mqtt", "influx")
    monkeypatch.setenv("RURALWATER_INFLUX__TOKEN", "a-real-token")
    Settings().require_secrets("mqtt", "influx")


def test_each_process_is_asked_only_for_the_secrets_it_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A field gateway talks to the broker only; it must not need an InfluxDB password.
    monkeypatch.setenv("RURALWATER_ENVIRONMENT", "production")
    monkeypatch.setenv("RURALWATER_MQTT__PASSWORD", "s3cure-gateway-pass")
    Settings().require_secrets("mqtt")
    with pytest.raises(MissingSecrets):
        Settings().require_secrets("influx")
