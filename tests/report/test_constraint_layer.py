"""The clue constraint as the map page draws it: countries by verdict (neutral ones left out), shaded
by share, spatial clues on their own, every text escaped, and nothing at all without a constraint."""

from __future__ import annotations

import json

from geodesk.report.map_page import CONSTRAINT_COLOURS, constraint_json, constraint_layer

EVIL = "<script>alert(1)</script>"
SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


def _country(code: str, status: str, share: float, reason: str = "") -> dict[str, object]:
    return {
        "type": "Feature",
        "geometry": SQUARE,
        "properties": {
            "layer": "country",
            "country_code": code,
            "country": code,
            "status": status,
            "share": share,
            "reason": reason,
        },
    }


def test_countries_by_verdict_and_spatial_clues_escaped() -> None:
    document = {
        "leading": [{"country": "Uzbekistan", "share": 0.9}],
        "geojson": {
            "type": "FeatureCollection",
            "features": [
                _country("UZ", "supported", 0.9, f"supported by: {EVIL}"),
                _country("KZ", "contested", 0.09),
                _country("BR", "ruled_out", 0.0),
                _country("FR", "neutral", 0.01),
                {
                    "type": "Feature",
                    "geometry": None,
                    "properties": {"layer": "country", "status": "supported"},
                },
                {
                    "type": "Feature",
                    "geometry": SQUARE,
                    "properties": {"layer": "sun", "clue_id": 3, "text": EVIL},
                },
            ],
        },
    }
    layer = constraint_layer(document)
    assert layer is not None and layer["title_html"] == "Clues lead to Uzbekistan (90%)"
    statuses = [f["properties"]["status"] for f in layer["features"]]
    assert statuses == ["supported", "contested", "ruled_out", "area"]  # neutral and shapeless left out
    uz, kz = layer["features"][0]["properties"], layer["features"][1]["properties"]
    assert uz["colour"] == CONSTRAINT_COLOURS["supported"] and uz["opacity"] > kz["opacity"]
    text = constraint_json(document)
    assert (
        "<script>" not in text
        and "&lt;script&gt;" in json.loads(text)["features"][0]["properties"]["label_html"]
    )
    assert constraint_layer(None) is None and constraint_json(None) == "null"
