"""The production docker-compose.yml: valid, every secret required, every server health-checked.

No Docker engine runs on the build machines, so these tests drive Debian's docker-compose 1.29
with ``config``, which parses, interpolates and validates the file without an engine. Building
the image and starting the stack are not exercised here (docs/operations.md).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from common.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / "env.example"
SECRETS = {
    "MQTT_COLLECTOR_PASSWORD": "collector-broker-pw",
    "MQTT_BUREAU_PASSWORD": "bureau-broker-pw",
    "INFLUXDB_ADMIN_PASSWORD": "influx-admin-pw",
    "INFLUXDB_COLLECTOR_PASSWORD": "influx-collector-pw",
    "INFLUXDB_ANALYSIS_PASSWORD": "influx-analysis-pw",
    "INFLUXDB_API_PASSWORD": "influx-api-pw",
    "INFLUXDB_GRAFANA_PASSWORD": "influx-grafana-pw",
    "POSTGRES_PASSWORD": "postgres-owner-pw",
    "TICKETS_DB_GRAFANA_PASSWORD": "postgres-grafana-pw",
    "API_JWT_SECRET": "a-long-random-jwt-signing-secret",
    "ANALYSIS_API_TOKEN": "rw_0123456789_analysis-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-admin-pw",
}
# Required, not secret: where the county's asset register is on the host.
REQUIRED = SECRETS | {"RURALWATER_REGISTER_FILE": "/srv/ruralwater/register.json"}

pytestmark = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose not installed"
)


def compose(tmp_path: Path, env: dict[str, str], *args: str, env_file: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on the repository's file with exactly ``env``, no stray .env."""
    if env_file is None:
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    binary = shutil.which("docker-compose")
    assert binary is not None
    return subprocess.run(
        [binary, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE),
         "--env-file", str(env_file), *args],
        env={"HOME": str(tmp_path), **env},
        capture_output=True, text=True, timeout=120, check=False,
    )


def resolved_config(tmp_path: Path) -> dict[str, Any]:
    result = compose(tmp_path, REQUIRED, "config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def test_config_is_valid_with_every_secret_set(tmp_path: Path) -> None:
    result = compose(tmp_path, REQUIRED, "config", "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_config_fails_naming_the_missing_secret(tmp_path: Path, missing: str) -> None:
    env = {name: value for name, value in REQUIRED.items() if name != missing}
    result = compose(tmp_path, env, "config", "-q")
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_an_unfilled_copy_of_env_example_is_refused(tmp_path: Path) -> None:
    # env.example lists every secret with an empty value; `:?` rejects empty as well as unset.
    result = compose(tmp_path, {}, "config", "-q", env_file=ENV_EXAMPLE)
    assert result.returncode != 0
    assert "Missing mandatory value" in result.stderr


def test_secrets_have_no_default_values() -> None:
    text = COMPOSE_FILE.read_text()
    secret_refs = re.findall(r"\$\{(\w*(?:PASSWORD|TOKEN|SECRET)\w*)(:?[-?]?)", text)
    assert {name for name, _ in secret_refs} == set(SECRETS)
    assert all(operator == ":?" for _, operator in secret_refs), secret_refs


def test_every_server_is_health_checked_and_waited_for(tmp_path: Path) -> None:
    services: dict[str, dict[str, Any]] = resolved_config(tmp_path)["services"]
    one_shots = {name for name, svc in services.items() if svc.get("restart") == "no"}
    assert one_shots == {"mosquitto-init"}
    for name, service in services.items():
        if name not in one_shots:
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        for dependency, rule in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully" if dependency in one_shots
                else "service_healthy"
            )
            assert rule["condition"] == expected, (name, dependency)


def test_broker_starts_only_after_its_password_file_is_written(tmp_path: Path) -> None:
    services = resolved_config(tmp_path)["services"]
    passwd_volume = "mosquitto-passwd:/mosquitto/passwd"
    assert any(v.startswith(passwd_volume) for v in services["mosquitto-init"]["volumes"])
    assert any(v.startswith(passwd_volume) for v in services["mosquitto"]["volumes"])
    assert services["mosquitto"]["depends_on"]["mosquitto-init"]["condition"] == (
        "service_completed_successfully"
    )


def _is_settings_field(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    annotation = field.annotation
    return (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
        and _is_settings_field(annotation, path[1:])
    )


#: each Python service and the secrets its entry point demands in production
PYTHON_SERVICES = {"collector": ("mqtt", "influx"), "api": ("influx",),
                   "background": ("influx",), "analysis": ("influx",)}


@pytest.mark.parametrize("service", sorted(PYTHON_SERVICES))
def test_python_service_environment_names_real_settings_and_passes_production_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    # Settings ignores unknown variables, so a misspelt name would silently do nothing.
    environment: dict[str, str] = resolved_config(tmp_path)["services"][service]["environment"]
    for name in environment:
        if not name.startswith("RURALWATER_"):
            continue  # read by the service's command line, e.g. ANALYSIS_API_TOKEN
        path = name.removeprefix("RURALWATER_").lower().split("__")
        assert _is_settings_field(Settings, path), name
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    settings.require_secrets(*PYTHON_SERVICES[service])
    assert settings.environment == "production"
    assert settings.influx.url == "http://influxdb:8086"
    assert settings.influx.create_database is False
    assert settings.influx.username == {"collector": "collector", "analysis": "analysis"}.get(
        service, "api")


def test_collector_talks_to_the_broker_as_its_own_user_and_keeps_its_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = resolved_config(tmp_path)["services"]["collector"]["environment"]
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.mqtt.host == "mosquitto"
    assert settings.mqtt.username == "svc.collector"
    assert str(settings.collector.data_dir) == "/var/lib/ruralwater/collector"


def test_api_uses_postgresql_and_the_analysis_reaches_the_api(tmp_path: Path) -> None:
    services = resolved_config(tmp_path)["services"]
    api_env, analysis_env = services["api"]["environment"], services["analysis"]["environment"]
    assert api_env["RURALWATER_API__DATABASE_URL"] == (
        "postgresql+psycopg://ruralwater:postgres-owner-pw@postgres:5432/ruralwater")
    assert analysis_env["RURALWATER_ANALYSIS__API_URL"] == "http://api:8000"
    assert analysis_env["RURALWATER_ANALYSIS__API_TOKEN"] == api_env["ANALYSIS_API_TOKEN"]
    assert services["background"]["command"] == ["python", "-m", "api", "background"]
