"""Load the stored reference series (see make_reference.py) for the analysis tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import pandas as pd

from common.register import County

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Reference:
    readings: pd.DataFrame  # long format, time UTC
    county: County
    truth: list[dict]  # the incidents as JSON objects, with their measured effect

    def effect(self, kind: str, key: str) -> datetime:
        """A timestamp from the effect of the (first) incident of ``kind``."""
        incident = next(i for i in self.truth if i["kind"] == kind)
        return datetime.fromisoformat(incident["effect"][key])

    def incident(self, kind: str) -> dict:
        return next(i for i in self.truth if i["kind"] == kind)


@cache
def _load(case: str) -> Reference:
    frame = pd.read_csv(HERE / f"{case}.csv.gz", dtype={"device": str, "kind": str,
                                                        "field": str, "value": float})
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    county = County.read(HERE / f"{case}.register.json")
    truth = json.loads((HERE / f"{case}.truth.json").read_text())
    return Reference(frame, county, truth)


def load(case: str) -> Reference:
    """The reference ``case`` (shortage, quality, devices); readings are a fresh copy."""
    cached = _load(case)
    return Reference(cached.readings.copy(), cached.county, cached.truth)
