"""``convcost hardware``: every shipped profile listed with its numbers, in every format."""

from __future__ import annotations

import csv
import io
import json

import pytest

from typer.testing import CliRunner

from convcost.cli import app
from convcost.hardware import list_profiles
from convcost.render.common import FORMATS
from convcost.render.hardware import HARDWARE_RENDERERS

runner = CliRunner()


def test_every_format_has_a_renderer() -> None:
    assert set(HARDWARE_RENDERERS) == set(FORMATS)


def test_json_lists_every_profile_with_sources() -> None:
    result = runner.invoke(app, ["hardware", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [p["id"] for p in doc["profiles"]] == [p.id for p in list_profiles()]
    t4 = next(p for p in doc["profiles"] if p["id"] == "t4")
    assert t4["peak_ops_per_second"]["float16"]["value"] == 65 * 10**12
    assert t4["memory_bytes_per_second"]["value"] == 320 * 10**9
    assert all(source["url"].startswith("https://") for p in doc["profiles"] for source in p["sources"].values())


def test_csv_and_table_and_one_profile() -> None:
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["hardware", "--format", "csv"]).stdout)))
    by_id = {row["id"]: row for row in rows}
    assert by_id["t4"]["peak_bfloat16_ops_per_second"] == ""  # not published: refused by --hardware t4
    assert by_id["h100-sxm"]["memory_bytes_per_second"] == str(3_350 * 10**9)
    table = runner.invoke(app, ["hardware", "t4"], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "320 GB/s" in table.stdout and "lower bound" in table.stdout
    unknown = runner.invoke(app, ["hardware", "rtx4080"])
    assert unknown.exit_code == 2 and "did you mean 'rtx4090'" in unknown.stderr


def test_the_table_fits_the_width_and_leaves_no_trailing_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """As every other table: off a terminal its natural width with no trailing space; at 60 columns the
    columns that fit (the device name, then the rarer precisions, go first), no number cut."""
    plain = runner.invoke(app, ["hardware"]).stdout
    assert all(line == line.rstrip() for line in plain.splitlines())
    assert "NVIDIA T4" in plain and "3,350 GB/s" in plain
    monkeypatch.setenv("COLUMNS", "60")
    narrow = runner.invoke(app, ["hardware"]).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert "3,350 GB/s" in narrow and "989.5 T" in narrow and "NVIDIA" not in narrow
