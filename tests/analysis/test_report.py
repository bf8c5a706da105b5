"""The leakage and compliance report on simulated data: files, columns and numbers.

One simulated county (3 villages) over the end of June into July, with a chlorinator
failure in June and a demand surge that runs a tank dry, analysed once; every test reads
the same report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import openpyxl
import pandas as pd
import pytest
from PIL import Image

from analysis.params import AnalysisParams
from analysis.pipeline import Analysis, analyse
from analysis.report import DMA_COLUMNS, VILLAGE_COLUMNS, ReportFiles, write_report
from simulator.incidents import Incident
from tests.analysis.simdata import Simulated, simulate

START = datetime.fromisoformat("2026-06-26T16:00:00+00:00")  # local midnight, 27 June
DAYS = 7.0
CHLORINE_OFF = START + timedelta(days=1, hours=6)


@dataclass
class Made:
    sim: Simulated
    analysis: Analysis
    files: ReportFiles


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    incidents = [
        Incident(kind="chlorinator_failure", target="v001", start=CHLORINE_OFF,
                 end=CHLORINE_OFF + timedelta(hours=6)),
        Incident(kind="demand_surge", target="v002", start=START + timedelta(hours=12),
                 magnitude=4.0, aquifer_decline_m_per_day=8.0),
    ]
    sim = simulate(3, 12, DAYS, seed=11, incidents=incidents, start=START)
    params = AnalysisParams(lookback_days=DAYS + 1)
    analysis = analyse(sim.readings, sim.county, params, sim.end)
    files = write_report(tmp_path_factory.mktemp("report"), dma_days=analysis.dma_days,
                         supply=analysis.supply, readings=sim.readings, register=sim.county,
                         params=params, worst=2)
    return Made(sim, analysis, files)


def test_the_csv_xlsx_and_png_files_are_written(made: Made) -> None:
    files = made.files
    for path in (files.villages_csv, files.dmas_csv, files.xlsx, *files.plots):
        assert path.is_file() and path.stat().st_size > 0
    assert len(files.plots) == 2
    for plot in files.plots:
        with Image.open(plot) as image:
            image.verify()
            assert image.format == "PNG"
            assert image.size[0] >= 600 and image.size[1] >= 400


def test_the_workbook_opens_and_carries_the_report_columns(made: Made) -> None:
    book = openpyxl.load_workbook(made.files.xlsx, read_only=True)
    assert book.sheetnames == ["villages_monthly", "dmas_monthly", "dma_days",
                               "supply_outlook"]
    header = [c.value for c in next(book["villages_monthly"].iter_rows(max_row=1))]
    assert header == VILLAGE_COLUMNS
    header = [c.value for c in next(book["dmas_monthly"].iter_rows(max_row=1))]
    assert header == DMA_COLUMNS
    from_sheet = pd.read_excel(made.files.xlsx, sheet_name="villages_monthly")
    from_csv = pd.read_csv(made.files.villages_csv)
    assert len(from_sheet) == len(from_csv) == 6  # 3 villages x June and July
    pd.testing.assert_series_equal(from_sheet["supplied_m3"], from_csv["supplied_m3"],
                                   atol=1e-3, check_dtype=False)


def test_volumes_and_nrw_are_the_kpi_frames_summed_per_village_and_month(made: Made) -> None:
    days = made.analysis.dma_days.dropna(subset=["inflow_m3", "consumption_m3"]).copy()
    days["month"] = pd.to_datetime(days["day"]).dt.strftime("%Y-%m")
    expected = days.groupby(["village", "month"])[["inflow_m3", "consumption_m3"]].sum()
    report = pd.read_csv(made.files.villages_csv).set_index(["village", "month"])
    assert set(report.index) == set(expected.index)
    for key, row in expected.iterrows():
        got = report.loc[key]
        assert got["supplied_m3"] == pytest.approx(row["inflow_m3"], abs=1e-3)
        assert got["consumption_m3"] == pytest.approx(row["consumption_m3"], abs=1e-3)
        nrw = row["inflow_m3"] - row["consumption_m3"]
        assert got["nrw_m3"] == pytest.approx(nrw, abs=1e-3)
        if row["inflow_m3"] > 0:  # the surged village may have had no water at all
            assert got["nrw_pct"] == pytest.approx(100 * nrw / row["inflow_m3"], abs=1e-3)
        population = next(v.population for v in made.sim.county.villages if v.id == key[0])
        assert got["litres_per_person_day"] == pytest.approx(
            1000 * row["consumption_m3"] / population / got["days"], rel=1e-4)
    dmas = pd.read_csv(made.files.dmas_csv)
    assert dmas["supplied_m3"].sum() == pytest.approx(expected["inflow_m3"].sum(), abs=1e-2)


def test_quality_compliance_drops_only_in_the_month_of_the_chlorinator_failure(
        made: Made) -> None:
    report = pd.read_csv(made.files.villages_csv).set_index(["village", "month"])
    june, july = report.loc[("v001", "2026-06")], report.loc[("v001", "2026-07")]
    assert 80.0 < june["quality_compliance_pct"] < 100.0
    assert july["quality_compliance_pct"] == 100.0
    quality = made.sim.readings[made.sim.readings["kind"] == "quality"]
    local = quality["time"].dt.tz_localize(None) + pd.Timedelta(hours=8)
    in_june = quality[local.dt.month == 6]
    assert june["quality_readings"] == in_june.groupby(["device", "time"]).ngroups
    assert report.loc[("v002", "2026-06"), "quality_readings"] != \
        report.loc[("v002", "2026-06"), "quality_readings"]  # NaN: v002 has no analyser


def test_a_village_whose_tank_ran_dry_falls_below_full_guarantee(made: Made) -> None:
    report = pd.read_csv(made.files.villages_csv).set_index(["village", "month"])
    surged = report.loc["v002"]
    assert surged["days_short"].sum() >= 1
    assert (surged["guarantee_rate_pct"] < 100.0).any()
    assert (report.loc["v003", "guarantee_rate_pct"] == 100.0).all()
