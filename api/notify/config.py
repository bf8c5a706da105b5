"""Where notices go: named channels, the channels of each audience, escalation policies.

Loaded from YAML (``load_notify_config``); see api/notify/sample.yaml::

    channels:
      dispatch-room: {type: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=...",
                      secret: "SEC..."}
      crew-1-group: {type: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=..."}
    routes:                 # audience -> channel names
      dispatcher: [dispatch-room]
    crew_routes:            # crew id -> channel names, for the ``crew`` audience
      1: [crew-1-group]
    policies:               # name -> escalation policy; "default" is used when none is named,
                            # "emergency" for plan activations
      default: {steps: [{audience: crew, after_min: 0, repeat_every_min: 30}, ...]}
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.notify.channels import AnyChannel
from api.notify.escalation import DEFAULT_POLICY, EMERGENCY_POLICY, EscalationPolicy
from api.notify.sender import RetryPolicy

CREW_AUDIENCE = "crew"


class NotifyConfigError(ValueError):
    """The notification configuration file is unreadable or inconsistent."""


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: dict[str, AnyChannel] = Field(default_factory=dict)
    routes: dict[str, list[str]] = Field(default_factory=dict)
    crew_routes: dict[int, list[str]] = Field(default_factory=dict)
    policies: dict[str, EscalationPolicy] = Field(
        default_factory=lambda: {"default": DEFAULT_POLICY, "emergency": EMERGENCY_POLICY})
    retry: RetryPolicy = RetryPolicy()
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP read timeout per try")

    @model_validator(mode="after")
    def _routes_name_known_channels(self) -> NotifyConfig:
        named = [*self.routes.values(), *self.crew_routes.values()]
        unknown = sorted({name for names in named for name in names} - set(self.channels))
        if unknown:
            raise ValueError(f"routes name unknown channels: {', '.join(unknown)}")
        if "default" not in self.policies:
            raise ValueError("policies must include one named 'default'")
        return self

    def policy(self, name: str) -> EscalationPolicy:
        """The named policy; an unknown name is a configuration error, not a silent default."""
        try:
            return self.policies[name]
        except KeyError as exc:
            raise NotifyConfigError(f"no escalation policy named {name!r}") from exc

    def channel_names(self, audience: str, crew_id: int | None) -> list[str]:
        """The channels an audience is reached on; a crew's own group before the default."""
        if audience == CREW_AUDIENCE and crew_id is not None and crew_id in self.crew_routes:
            return self.crew_routes[crew_id]
        return self.routes.get(audience, [])


def load_notify_config(path: Path) -> NotifyConfig:
    """Read and validate the YAML at ``path``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise NotifyConfigError(f"cannot read notification config {path}: {exc}") from exc
    try:
        return NotifyConfig.model_validate(raw)
    except ValidationError as exc:
        raise NotifyConfigError(f"invalid notification config {path}: {exc}") from exc
