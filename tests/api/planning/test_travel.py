"""The travel model: great-circle km x winding, time by road class; the road-table plug-in."""

from __future__ import annotations

import numpy as np
import pytest

from api.planning import (
    GreatCircleTravel,
    Location,
    RoadTableTravel,
    TravelMatrix,
    TravelSettings,
    great_circle_km,
)
from simulator.county import build_county


def test_one_degree_of_latitude_is_about_111_km() -> None:
    km = great_circle_km(np.array([39.0, 40.0]), np.array([112.0, 112.0]))
    assert km[0, 1] == pytest.approx(111.2, abs=0.1)
    assert km[0, 0] == 0 and km[1, 0] == km[0, 1]


def test_a_degree_of_longitude_shrinks_with_latitude() -> None:
    km = great_circle_km(np.array([39.0, 39.0]), np.array([112.0, 113.0]))
    assert km[0, 1] == pytest.approx(111.2 * np.cos(np.radians(39.0)), rel=1e-3)


def test_road_km_are_the_straight_line_times_the_winding_factor() -> None:
    places = [Location(latitude=39.0, longitude=112.0), Location(latitude=39.1, longitude=112.0)]
    straight = great_circle_km(np.array([39.0, 39.1]), np.array([112.0, 112.0]))[0, 1]
    matrix = GreatCircleTravel(TravelSettings(winding_factor=1.5)).matrix(places)
    assert matrix.km[0, 1] == pytest.approx(1.5 * straight)


def test_a_20_km_trip_averages_about_40_kmh_and_a_short_hop_runs_on_village_roads() -> None:
    model = GreatCircleTravel()
    minutes = model.driving_minutes(np.array([20.0, 2.0]))
    # 3 km of village road at 25 km/h + 17 km of county road at 45 km/h
    assert minutes[0] == pytest.approx(3 / 25 * 60 + 17 / 45 * 60)
    assert 20 / (minutes[0] / 60) == pytest.approx(40, abs=1)
    assert minutes[1] == pytest.approx(2 / 25 * 60)


def test_the_simulated_county_gives_a_full_symmetric_matrix() -> None:
    county = build_county(7, 200, households_per_village=1)
    places = [Location(latitude=v.latitude, longitude=v.longitude, key=v.id)
              for v in county.villages]
    places.append(Location(latitude=county.seat_latitude, longitude=county.seat_longitude))
    matrix = GreatCircleTravel().matrix(places)
    assert matrix.size == 201
    assert np.allclose(matrix.km, matrix.km.T) and np.all(np.diag(matrix.minutes) == 0)
    # townships lie 8-25 km from the seat, villages within a few km of their township
    from_seat = matrix.km[-1, :-1] / 1.4
    assert 2 < from_seat.min() and from_seat.max() < 45


def test_a_road_table_answers_in_the_order_asked() -> None:
    table = RoadTableTravel(["a", "b", "c"], np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0.0]]),
                            np.array([[0, 10, 20], [10, 0, 30], [20, 30, 0.0]]))
    matrix = table.matrix([Location(latitude=0, longitude=0, key=k) for k in ("c", "a")])
    assert matrix.minutes.tolist() == [[0, 20], [20, 0]]
    assert matrix.km.tolist() == [[0, 2], [2, 0]]


def test_a_road_table_needs_a_key_per_row() -> None:
    with pytest.raises(ValueError, match="2 keys for a 3-row road table"):
        RoadTableTravel(["a", "b"], np.zeros((3, 3)), np.zeros((3, 3)))


def test_a_travel_matrix_refuses_negative_or_mismatched_times() -> None:
    with pytest.raises(ValueError, match="not negative"):
        TravelMatrix(km=np.zeros((2, 2)), minutes=np.array([[0, -1], [1, 0.0]]))
    with pytest.raises(ValueError, match="square"):
        TravelMatrix(km=np.zeros((2, 3)), minutes=np.zeros((2, 3)))
