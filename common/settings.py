"""One settings object for every ruralwater process, read from the environment.

Variables are prefixed ``RURALWATER_`` and nested with ``__``, e.g.
``RURALWATER_MQTT__HOST=broker`` or ``RURALWATER_INFLUX__URL=http://influxdb:8086``.
Defaults are the embedded demo set-up; production (``RURALWATER_ENVIRONMENT=production``)
refuses to start without real secrets.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "password"}


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    keepalive_s: int = 30


class InfluxSettings(BaseModel):
    url: str = "http://127.0.0.1:8086"
    database: str = "ruralwater"
    username: str | None = None
    password: SecretStr | None = None
    # InfluxDB 2.x/3.x accept a token on the v1-compatible endpoints.
    token: SecretStr | None = None
    timeout_s: float = 10.0
    # Create the database at start-up (InfluxDB 1.x); off where a DBRP mapping is managed.
    create_database: bool = True


class CollectorSettings(BaseModel):
    # Stable client id: the broker keeps this collector's session (and its unacknowledged
    # messages) across restarts. Give each collector of a shared group its own id.
    client_id: str = "collector-1"
    # How long the broker queues for this collector while it is away. With a shared group,
    # keep it modest: a crashed member keeps being handed its share until it expires.
    session_expiry_s: int = 86400
    # Empty: a plain persistent subscription (the default). A group name subscribes as
    # ``$share/<group>/...`` so several collectors split the stream; Mosquitto 2.0 does not
    # restore shared subscriptions from its persistence file, so messages published after a
    # broker restart and before the collectors reconnect are lost to a shared group
    # (measured: collector/README.md).
    share_group: str = ""
    # How many unacknowledged messages the broker may send us; batches flush at half of it.
    receive_maximum: int = 10000
    batch_max_points: int = 5000
    batch_max_delay_s: float = 0.5
    max_message_bytes: int = 1_048_576
    max_readings_per_message: int = 5000
    # Readings stamped further ahead of the collector's clock are refused (device clock wrong).
    max_future_s: float = 3600.0
    # Readings older than this are refused (a gateway outbox never holds data this long).
    max_age_days: float = 400.0
    data_dir: Path = Path("var/collector")
    spool_max_bytes: int = 1_073_741_824
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    health_host: str = "127.0.0.1"
    health_port: int = 9108
    stats_interval_s: float = 10.0


class SimulatorSettings(BaseModel):
    seed: int = 20260701
    villages: int = 12
    # 0 draws a realistic ~300 households per village (the full county: 200 villages).
    households_per_village: int = 60
    # Simulated seconds per wall-clock second: 1440 runs a day per minute; 0 as fast as possible.
    speed: float = 1440.0
    days: float = 3.0
    output_dir: Path = Path("var/simulator")


class GatewaySettings(BaseModel):
    """The field gateway's uplink (gateway/README.md); devices and links are in its YAML file."""

    config_file: Path = Path("gateway.yaml")
    data_dir: Path = Path("var/gateway")
    # The outbox bound, in bytes of stored (zlib-compressed) payload; when full, the oldest
    # routine telemetry is dropped first, events never.
    outbox_max_bytes: int = Field(default=268_435_456, gt=0)
    # "NORMAL" (WAL) survives a crash or kill of the gateway process; "FULL" also survives a
    # power cut, at one fsync per put and per acknowledgement batch.
    outbox_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    readings_per_message: int = Field(default=60, ge=1, le=5000)
    # Published but not yet acknowledged; paho and libmosquitto lose messages past 65,535.
    max_inflight: int = Field(default=100, ge=1, le=65_000)
    # Token bucket on outbox publishing, so a backlog replays without flooding the uplink;
    # 0 turns it off. Live telemetry is far below it.
    replay_rate_msgs_s: float = Field(default=20.0, ge=0.0)
    replay_burst: int = Field(default=100, ge=1)
    session_expiry_s: int = 86400
    retry_after_refusal_s: float = 5.0
    # A command older than this when it arrives (queued while the gateway was offline) is
    # answered ok=false, not carried out: a valve closed a day late does harm.
    command_max_age_s: float = Field(default=900.0, gt=0)


class ApiSettings(BaseModel):
    """The ticket service (docs/api.md); ticket rules may come from a YAML file."""

    # SQLite (embedded) by default; production: postgresql+psycopg://user:pass@host/db
    database_url: str = "sqlite:///var/api.sqlite3"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1)
    # How much nicer than the requests the alert intake writer thread runs (Linux): it then
    # writes when request handling pauses, in bigger and cheaper batches (docs/api.md); 0:
    # the same priority.
    intake_writer_nice: int = Field(default=10, ge=0, le=19)
    # Signs the login JWTs; required in production. In development, when unset, a random
    # secret is generated once and kept in jwt_secret_file.
    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path = Path("var/api/jwt-secret")
    access_token_minutes: int = Field(default=480, ge=1)
    # YAML with ticket rules (alert kind -> type, priority, skill, SLA class); empty: built-in.
    ticket_rules_file: Path | None = None
    # Repair commitments per SLA class, hours.
    sla_minor_h: float = Field(default=12.0, gt=0)
    sla_ordinary_h: float = Field(default=24.0, gt=0)
    sla_major_h: float = Field(default=48.0, gt=0)
    # Telemetry verification of resolved tickets.
    verify_leak_nights: int = Field(default=3, ge=1)
    # A night passes when its minimum flow (02:00-04:00 local) <= baseline x (1 + this) ...
    verify_night_flow_tolerance: float = Field(default=0.15, ge=0)
    # ... + this absolute margin, m3/h (small DMAs have tiny baselines).
    verify_night_flow_margin_m3h: float = Field(default=0.05, ge=0)
    # Nights before the alert that define the baseline when the alert carries none.
    verify_baseline_nights: int = Field(default=7, ge=1)
    # A device ticket is verified when readings (or an open valve) arrive within this, hours.
    verify_device_window_h: float = Field(default=24.0, gt=0)
    # Leak surveys (chronic losses): complete local days of the DMA's daily KPIs after the
    # repair whose real losses (NRW less apparent losses) must be under the grade.
    verify_survey_days: int = Field(default=7, ge=1)
    verify_loss_grade_share: float = Field(default=0.12, gt=0, lt=1)  # CJJ 92-2016
    verify_apparent_loss_share: float = Field(default=0.02, ge=0, lt=1)  # of consumption
    # `python -m api background`: telemetry verification every this many seconds.
    verify_interval_s: float = Field(default=3600.0, gt=0)
    # A problem back within this many days of its ticket's verification reopens that
    # ticket (the repair did not hold); later, it opens a new one.
    reopen_within_days: float = Field(default=30.0, ge=0)
    utc_offset_hours: float = 8.0
    # Crew scheduling (api/scheduling): OR-Tools search per (re-)plan, s.
    planning_time_limit_s: float = Field(default=5.0, gt=0)
    # Days of shifts planned: today's and the next ones'.
    planning_horizon_days: int = Field(default=2, ge=1, le=7)
    # Re-plan in this process when tickets or crews change (keep it on in one process only).
    replan_loop: bool = True
    replan_poll_s: float = Field(default=15.0, gt=0)
    replan_debounce_s: float = Field(default=30.0, ge=0)
    replan_max_age_s: float = Field(default=1800.0, gt=0)
    # Notification channels, routes and escalation policies (api/notify/sample.yaml); unset:
    # no channels, reminders are logged as undelivered.
    notify_config_file: Path | None = None
    notify_interval_s: float = Field(default=60.0, gt=0)
    # Run the reminder loop in this process; with several workers or instances, keep it on
    # in exactly one (docs/api.md).
    notify_loop: bool = True
    # Emergency plan YAML files; empty: the shipped seasonal-shortage plan.
    emergency_plan_files: list[Path] = Field(default_factory=list)


class AnalysisSettings(BaseModel):
    """The analysis worker (docs/analysis.md); detection thresholds live in ``params_file``."""

    # Seconds between detection passes.
    interval_s: float = Field(default=900.0, gt=0)
    # Days of history held in memory and handed to the detectors (>= the params' lookback).
    lookback_days: float = Field(default=15.0, gt=0)
    # Each pass re-reads this many hours before its last read, for late (replayed) readings.
    reread_h: float = Field(default=3.0, ge=0)
    # The whole history is re-read once every this many hours, a piece each pass (catches
    # readings replayed later than reread_h).
    reload_h: float = Field(default=24.0, gt=0)
    # The newest hours of pump, tank and analyser data are read raw; older ones as hourly means.
    detail_h: float = Field(default=72.0, gt=0)
    # Upper bound on the points one InfluxDB query returns (meters are chunked by DMA and day).
    query_max_points: int = Field(default=250_000, ge=1000)
    # Alert state and the outbox of changes not yet delivered (SQLite).
    state_db: Path = Path("var/analysis/alerts.sqlite3")
    # The asset register (the simulator writes it; the ticket service imports the same file).
    register_file: Path = Path("var/simulator/register.json")
    # JSON or YAML overrides of the detection parameters (analysis/params.py); unset: defaults.
    params_file: Path | None = None
    # The ticket service; empty: alerts are kept in the outbox and not sent.
    api_url: str = "http://127.0.0.1:8000"
    # Its service token (python -m api create-token NAME --kind analysis); required in production.
    api_token: SecretStr | None = None
    api_timeout_s: float = Field(default=10.0, gt=0)
    # Keep the memory a pass frees for the next pass (glibc malloc; analysis/memory.py): no
    # fresh page faults for the same temporaries every pass, but the process stays at its
    # peak size between passes.
    keep_freed_memory: bool = True
    # The readings snapshot (a restart's head start) is written at most this often, in pass
    # time, and when the worker stops; 0: after every pass.
    snapshot_interval_s: float = Field(default=3600.0, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RURALWATER_", env_nested_delimiter="__", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)

    def require_secrets(self, *uses: Literal["mqtt", "influx"]) -> None:
        """In production, refuse to run without real secrets for what this process uses.

        Each entry point names its own (the collector: mqtt and influx; a field gateway:
        mqtt only; the API and the analysis: influx, and they check their own tokens), so no
        service has to be handed a secret it never uses. Raises MissingSecrets.
        """
        if self.environment != "production":
            return
        secrets = {
            "mqtt": ("RURALWATER_MQTT__PASSWORD", self.mqtt.password),
            "influx": ("RURALWATER_INFLUX__PASSWORD or RURALWATER_INFLUX__TOKEN",
                       self.influx.password or self.influx.token),
        }
        missing = [name for name, secret in (secrets[use] for use in uses)
                   if secret is None
                   or secret.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS]
        if missing:
            raise MissingSecrets(f"production needs real secrets: {', '.join(missing)}")


class MissingSecrets(ValueError):
    """A production process started without a secret it needs."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
