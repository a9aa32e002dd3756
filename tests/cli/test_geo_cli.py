"""`geodesk geo reverse` and `geodesk geo lookup`, through the real command-line entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from geodesk.cli import main

PLACE_KEYS = {
    "country_code", "country", "region", "city", "distance_km", "dispute", "border_zone", "lat", "lon"
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_reverse_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "geo", "reverse", "48.8566", "2.3522", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert set(doc) == PLACE_KEYS
    assert (doc["country_code"], doc["country"], doc["city"]) == ("FR", "France", "Paris")
    assert (doc["lat"], doc["lon"]) == (48.8566, 2.3522)
    assert doc["distance_km"] < 1


def test_reverse_rules_and_disputes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["geo", "reverse", "48.85837", "2.29448", "--json"]) == 0  # the Eiffel Tower
    assert json.loads(capsys.readouterr().out)["city"] == "Paris"
    assert main(["geo", "reverse", "48.85837", "2.29448", "--rule", "nearest", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["city"] == "Neuilly-sur-Seine"
    assert main(["geo", "reverse", "36.14", "-5.35"]) == 0  # Gibraltar
    assert "disputed: Admin. By U.K.; Claimed by Spain" in capsys.readouterr().out
    assert main(["geo", "reverse", "21.87", "33.75"]) == 0  # Bir Tawil
    out = capsys.readouterr().out
    assert "country:  none\n" in out and "Between Egypt and Sudan" in out


def test_reverse_names_the_zone_that_decided_a_border_point(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "geo", "reverse", "-1.67409", "29.22845", "--json")  # Goma
    doc = json.loads(out)
    assert code == 0 and (doc["country_code"], doc["border_zone"]) == ("CD", "Africa/Lubumbashi")
    code, out, _ = run(capsys, "geo", "reverse", "-1.67409", "29.22845")
    assert "border:   decided by the Africa/Lubumbashi time-zone polygon" in out
    code, out, _ = run(capsys, "geo", "reverse", "48.8566", "2.3522", "--json")  # Paris: far from borders
    assert json.loads(out)["border_zone"] is None


def test_reverse_negative_coordinates_and_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "geo", "reverse", "-33.8688", "151.2093")
    assert code == 0
    assert "Australia (AU)" in out and "Sydney" in out and "New South Wales" in out


def test_reverse_at_sea(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "geo", "reverse", "30", "-40", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["country_code"] is None and doc["city"] is None and doc["distance_km"] > 1000
    code, out, _ = run(capsys, "geo", "reverse", "30", "-40")
    assert "at sea" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["95", "0"], "latitude 95.0 is outside -90..90"),
        (["0", "east"], "longitude 'east' is not a number"),
        (["10"], "give LAT LON"),
        ([], "give LAT LON"),
        (["1", "2", "--input", "x.csv"], "not both"),
    ],
)
def test_reverse_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "geo", "reverse", *argv)
    assert code == 1 and out == ""
    assert message in err and err.startswith("geodesk: ")


def test_reverse_file_keeps_order_and_goes_on_after_bad_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_path = tmp_path / "points.csv"
    csv_path.write_text(
        "lat,lon\n48.8566,2.3522\nabc,2\n-33.8688,151.2093\n95,0\n,\n31.86389,117.28083\n", encoding="utf-8"
    )
    code, out, err = run(capsys, "geo", "reverse", "--input", str(csv_path))
    assert code == 2
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 6
    assert [d.get("city") for d in lines] == ["Paris", None, "Sydney", None, None, "Hefei"]
    assert [d.get("line") for d in lines if "error" in d] == [3, 5, 6]
    assert lines[1]["error"] == "latitude 'abc' is not a number"
    assert set(lines[0]) == PLACE_KEYS
    assert "line 3" in err and "3 row(s)" in err


def test_reverse_file_all_good_exits_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv_path = tmp_path / "points.csv"
    csv_path.write_text("Latitude,Longitude\n54.7065,20.511\n", encoding="utf-8")
    code, out, err = run(capsys, "geo", "reverse", "--input", str(csv_path))
    assert code == 0 and err == ""
    assert json.loads(out)["country_code"] == "RU"


def test_reverse_file_problems(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "geo", "reverse", "--input", str(tmp_path / "missing.csv"))
    assert code == 1 and "cannot read" in err
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("x,y\n1,2\n", encoding="utf-8")
    code, _, err = run(capsys, "geo", "reverse", "--input", str(bad_header))
    assert code == 1 and "columns lat,lon" in err


def test_lookup_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "geo", "lookup", "合肥", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["query"] == "合肥"
    top = doc["matches"][0]
    assert {"kind", "name", "country_code", "region", "lat", "lon", "score"} <= set(top)
    assert (top["kind"], top["name"], top["country_code"], top["region"]) == ("city", "Hefei", "CN", "Anhui")


def test_lookup_kind_limit_and_human(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "geo", "lookup", "Paris", "--kind", "city", "--limit", "2", "--json")
    matches = json.loads(out)["matches"]
    assert code == 0 and len(matches) == 2 and {m["kind"] for m in matches} == {"city"}
    code, out, _ = run(capsys, "geo", "lookup", "Deutschland")
    assert code == 0 and "country" in out and "Germany" in out


def test_lookup_no_match_and_bad_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "geo", "lookup", "Qwxzyville", "--json")
    assert code == 1 and json.loads(out)["matches"] == []
    code, _, err = run(capsys, "geo", "lookup", "Paris", "--limit", "0")
    assert code == 1 and "--limit" in err


def test_installed_entry_point() -> None:
    exe = Path(sys.executable).parent / "geodesk"
    assert exe.is_file(), f"the geodesk entry point is not installed next to {sys.executable}"
    proc = subprocess.run(
        [str(exe), "geo", "reverse", "31.86389", "117.28083", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["country_code"], doc["region"], doc["city"]) == ("CN", "Anhui", "Hefei")
    proc = subprocess.run(
        [str(exe), "geo", "reverse", "--input", "-"],
        input="lat,lon\n0,1000\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"] == "longitude 1000.0 is outside -180..180"
