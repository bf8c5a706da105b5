"""The expander turns panel queries into what Grafana 11 sends to the databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.expand import (
    ExpansionError,
    TimeRange,
    Variable,
    calculate_interval_ms,
    expand_influxql,
    expand_sql,
    format_interval,
    influx_formatter,
    interpolate_variables,
    round_interval,
)

START = datetime(2026, 7, 1, tzinfo=UTC)
DAY = TimeRange(START, START + timedelta(days=1))
VILLAGES = Variable("village", selected=("v001",), options=("v001", "v002", "v003"),
                    multi=True, include_all=True)


def test_time_filter_is_the_absolute_range_in_milliseconds() -> None:
    text = expand_influxql('SELECT mean("flow_m3h") FROM "pump" WHERE $timeFilter', DAY, {},
                           300_000)
    assert text == ('SELECT mean("flow_m3h") FROM "pump" WHERE time >= 1782864000000ms and '
                    "time <= 1782950400000ms")


def test_interval_macros_use_the_rounded_interval() -> None:
    text = expand_influxql("GROUP BY time($__interval) -- $interval $__interval_ms", DAY, {},
                           300_000)
    assert text == "GROUP BY time(5m) -- 5m 300000"


@pytest.mark.parametrize(("raw_ms", "rounded_ms"), [
    (86.4 * 1000, 60_000), (300_000, 300_000), (345_600, 300_000), (600_000, 600_000),
    (3_000_000, 3_600_000), (40_000_000, 43_200_000), (100_000_000, 86_400_000),
])
def test_intervals_round_like_grafana(raw_ms: float, rounded_ms: int) -> None:
    assert round_interval(raw_ms) == rounded_ms


def test_interval_never_below_the_data_source_minimum() -> None:
    one_hour = TimeRange(START, START + timedelta(hours=1))
    assert calculate_interval_ms(one_hour, 1000) == 5_000
    assert calculate_interval_ms(one_hour, 1000, "5m") == 300_000
    assert calculate_interval_ms(TimeRange(START, START + timedelta(days=4)), 1000, "5m") \
        == 300_000


@pytest.mark.parametrize(("ms", "text"), [(300_000, "5m"), (86_400_000, "1d"),
                                          (604_800_000, "7d"), (500, "500ms"), (0, "1ms")])
def test_intervals_format_like_grafana_backend(ms: int, text: str) -> None:
    assert format_interval(ms) == text


def test_all_villages_expand_to_a_regex_alternation() -> None:
    everything = Variable("village", selected=(), options=("v001", "v002"), multi=True,
                          include_all=True, selected_all=True)
    text = expand_influxql('WHERE "village" =~ /^$village$/', DAY, {"village": everything}, 1)
    assert text == 'WHERE "village" =~ /^(v001|v002)$/'


def test_custom_all_value_is_inserted_raw() -> None:
    everything = Variable("township", selected=(), options=("t01",), multi=True,
                          include_all=True, all_value=".*", selected_all=True)
    text = interpolate_variables('"township" =~ /^$township$/', {"township": everything},
                                 influx_formatter)
    assert text == '"township" =~ /^.*$/'


def test_single_multi_value_is_regex_escaped_without_parentheses() -> None:
    odd = Variable("site", selected=("aq.v1(tap)",), options=(), multi=True, include_all=True)
    text = interpolate_variables("/^$site$/ /^${site}$/ /^[[site]]$/", {"site": odd},
                                 influx_formatter)
    assert text == r"/^aq\.v1\(tap\)$/ /^aq\.v1\(tap\)$/ /^aq\.v1\(tap\)$/"


def test_unknown_dollar_names_are_left_for_the_backend() -> None:
    text = interpolate_variables("$timeFilter $village $__interval", {"village": VILLAGES},
                                 influx_formatter)
    assert text == "$timeFilter v001 $__interval"


def test_sql_values_are_quoted_literals() -> None:
    chosen = Variable("village", selected=("v001", "o'brien"), options=(), multi=True,
                      include_all=True)
    text = expand_sql("WHERE t.village_id IN ($village)", DAY, {"village": chosen}, 1000)
    assert text == "WHERE t.village_id IN ('v001','o''brien')"


def test_sql_time_macros() -> None:
    text = expand_sql("SELECT $__timeGroupAlias(created_at, '1d'), $__time(c) WHERE "
                      "$__timeFilter(created_at) AND x > $__timeFrom() AND y < $__timeTo() "
                      "AND $__unixEpochFilter(e)", DAY, {}, 1000)
    assert text == (
        "SELECT floor(extract(epoch from created_at)/86400)*86400 AS \"time\", c AS \"time\" "
        "WHERE created_at BETWEEN '2026-07-01T00:00:00Z' AND '2026-07-02T00:00:00Z' AND "
        "x > '2026-07-01T00:00:00Z' AND y < '2026-07-02T00:00:00Z' AND "
        "e >= 1782864000 AND e <= 1782950400")


def test_unsupported_macro_is_refused() -> None:
    with pytest.raises(ExpansionError):
        expand_sql("SELECT $__timeGroupMagic(x)", DAY, {}, 1000)


def test_time_range_must_be_aware_and_ordered() -> None:
    with pytest.raises(ValueError):
        TimeRange(datetime(2026, 7, 1), datetime(2026, 7, 2))
    with pytest.raises(ValueError):
        TimeRange(START, START)
