"""Travel between villages: distances (km) and driving times (minutes) as matrices.

The default model, :class:`GreatCircleTravel`, needs nothing but coordinates: the
great-circle distance times a road-winding factor, driven on village roads near each end
and on county roads in between. Anything with a ``matrix(locations)`` method returning a
:class:`TravelMatrix` can replace it (:class:`TravelModel`); :class:`RoadTableTravel` is one
that looks pairs up in a measured road table by location key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, Field

from api.planning.models import Location

#: mean Earth radius, km (IUGG)
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class TravelMatrix:
    """Travel from every location (rows) to every location (columns) of one list.

    ``km`` and ``minutes`` are float arrays of shape (n, n), zero on the diagonal.
    """

    km: NDArray[np.float64]
    minutes: NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.km.shape != self.minutes.shape or self.km.ndim != 2 \
                or self.km.shape[0] != self.km.shape[1]:
            raise ValueError(f"a travel matrix must be square and both arrays the same shape, "
                             f"got km {self.km.shape} and minutes {self.minutes.shape}")
        if np.any(~np.isfinite(self.minutes)) or np.any(self.minutes < 0):
            raise ValueError("travel minutes must be finite and not negative")

    @property
    def size(self) -> int:
        return int(self.km.shape[0])


class TravelModel(Protocol):
    """Anything that turns a list of locations into a travel matrix between them."""

    def matrix(self, locations: Sequence[Location]) -> TravelMatrix: ...


class TravelSettings(BaseModel):
    """How the great-circle model turns straight lines into driving.

    A trip runs ``village_road_km`` on village roads at each end (less when the trip is
    short) and the rest on county roads. With the defaults a 20 km road trip averages
    about 40 km/h; a 3 km hop inside a township 25 km/h.
    """

    winding_factor: float = Field(default=1.4, ge=1.0,
                                  description="road km per great-circle km")
    village_road_km: float = Field(default=1.5, ge=0.0,
                                   description="km of village road at each end of a trip")
    village_road_speed_kmh: float = Field(default=25.0, gt=0.0)
    county_road_speed_kmh: float = Field(default=45.0, gt=0.0)


def great_circle_km(latitudes: NDArray[np.float64],
                    longitudes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Haversine distances (km) between every pair of points given in degrees: (n, n)."""
    lat = np.radians(np.asarray(latitudes, dtype=np.float64))
    lon = np.radians(np.asarray(longitudes, dtype=np.float64))
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    half_chord = (np.sin(dlat / 2) ** 2
                  + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(half_chord, 0.0, 1.0)))


class GreatCircleTravel:
    """Road km = great-circle km x winding factor; time by road class (see TravelSettings)."""

    def __init__(self, settings: TravelSettings | None = None) -> None:
        self.settings = settings or TravelSettings()

    def matrix(self, locations: Sequence[Location]) -> TravelMatrix:
        lat = np.array([loc.latitude for loc in locations], dtype=np.float64)
        lon = np.array([loc.longitude for loc in locations], dtype=np.float64)
        road_km = great_circle_km(lat, lon) * self.settings.winding_factor
        return TravelMatrix(km=road_km, minutes=self.driving_minutes(road_km))

    def driving_minutes(self, road_km: NDArray[np.float64]) -> NDArray[np.float64]:
        """Minutes to drive ``road_km`` (any shape): village roads at both ends, county
        roads in between."""
        s = self.settings
        village_km = np.minimum(road_km, 2 * s.village_road_km)
        county_km = road_km - village_km
        hours = village_km / s.village_road_speed_kmh + county_km / s.county_road_speed_kmh
        result: NDArray[np.float64] = hours * 60.0
        return result


class RoadTableTravel:
    """Travel looked up in a measured road table (e.g. from a routing engine) by location key.

    ``keys`` name the table's rows and columns (village ids, ``depot``...); every location
    asked for must carry one of them as its ``key``.
    """

    def __init__(self, keys: Sequence[str], km: ArrayLike, minutes: ArrayLike) -> None:
        self._table = TravelMatrix(km=np.asarray(km, dtype=np.float64),
                                   minutes=np.asarray(minutes, dtype=np.float64))
        if len(keys) != self._table.size:
            raise ValueError(f"{len(keys)} keys for a {self._table.size}-row road table")
        self._row: Mapping[str, int] = {key: row for row, key in enumerate(keys)}

    def matrix(self, locations: Sequence[Location]) -> TravelMatrix:
        rows = []
        for location in locations:
            if location.key is None or location.key not in self._row:
                raise ValueError(f"location {location.key!r} is not in the road table")
            rows.append(self._row[location.key])
        index = np.array(rows, dtype=np.intp)
        return TravelMatrix(km=self._table.km[np.ix_(index, index)],
                            minutes=self._table.minutes[np.ix_(index, index)])
