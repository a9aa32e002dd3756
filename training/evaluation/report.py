"""The evaluation report: Markdown with hand-written SVG plots, beside GaGA's published rows.

matplotlib is not a geodesk dependency (the venv has none), and three simple charts do not justify
one: the plots are SVG written here, deterministic, readable in any browser and in Markdown viewers.
Plots: accuracy by threshold (ours, with GaGA's published GWS15k row as a reference line), a histogram
of errors over the paper's threshold bands, and a map of errors (each truth point coloured by its
error band) on the bundled Natural Earth outlines (equirectangular).

The paper's rows come from resources/papers/gaga_tables.json and are always printed under a heading
that says they are the paper's numbers on the paper's datasets, not ours.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from geodesk.geo.metrics import THRESHOLD_KEYS, PredictionRow, TruthRow, distances_km
from geodesk.geo.sources import load_countries_geojson
from training.evaluation.io import write_text_atomic

PAPER_TABLES = Path(__file__).resolve().parents[2] / "resources" / "papers" / "gaga_tables.json"
BANDS = ("< 1 km", "1-25 km", "25-200 km", "200-750 km", "750-2500 km", ">= 2500 km", "no answer")
BAND_COLOURS = ("#1a9850", "#66bd63", "#a6d96a", "#fdae61", "#f46d43", "#d73027", "#7f7f7f")
PLOTS = ("accuracy_by_threshold.svg", "error_histogram.svg", "error_map.svg")


def load_paper_tables(path: Path = PAPER_TABLES) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def error_bands(d_km: np.ndarray) -> np.ndarray:
    """(N,) band index per error: 0..5 by the paper's thresholds (d < r), 6 for no distance."""
    edges = np.asarray([1, 25, 200, 750, 2500], dtype=np.float64)
    out = np.full(d_km.shape[0], 6, dtype=np.int64)
    ok = np.isfinite(d_km)
    out[ok] = np.searchsorted(edges, d_km[ok], side="right")  # d == r falls in the band above: a miss
    return out


# ------------------------------------------------------------------------------------------------
# SVG
# ------------------------------------------------------------------------------------------------


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{width}" height="{height}" fill="white"/>',
            *body,
            "</svg>",
            "",
        ]
    )


def accuracy_svg(ours: dict[str, float], reference: dict[str, float] | None, reference_label: str) -> str:
    """Bars: our accuracy (%) at each threshold; dots joined by a line: the paper's row, when given."""
    w, h, left, bottom, top = 560, 320, 50, 40, 30
    plot_w, plot_h = w - left - 20, h - bottom - top
    slot = plot_w / len(THRESHOLD_KEYS)
    body = [
        f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">'
        "Accuracy by distance threshold (%)</text>"
    ]
    for pct in range(0, 101, 20):
        y = top + plot_h * (1 - pct / 100)
        body.append(f'<line x1="{left}" x2="{w - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{pct}</text>')
    ref_points = []
    for i, key in enumerate(THRESHOLD_KEYS):
        x = left + slot * i + slot * 0.2
        value = ours.get(key, 0.0)
        bar_h = plot_h * value / 100
        body.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{slot * 0.6:.1f}" '
            f'height="{bar_h:.1f}" fill="#4575b4"/>'
        )
        body.append(
            f'<text x="{x + slot * 0.3:.1f}" y="{top + plot_h - bar_h - 4:.1f}" '
            f'text-anchor="middle">{value:.1f}</text>'
        )
        body.append(
            f'<text x="{x + slot * 0.3:.1f}" y="{h - bottom + 16}" text-anchor="middle">{key} km</text>'
        )
        if reference is not None and reference.get(key) is not None:
            ref_points.append((x + slot * 0.3, top + plot_h * (1 - float(reference[key]) / 100)))
    if ref_points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in ref_points)
        body.append(f'<polyline points="{path}" fill="none" stroke="#d73027" stroke-dasharray="4 3"/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#d73027"/>' for x, y in ref_points)
    legend_y = h - 8
    body.append(f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="#4575b4"/>')
    body.append(f'<text x="{left + 14}" y="{legend_y}">this model</text>')
    if ref_points:
        body.append(
            f'<line x1="{left + 110}" x2="{left + 130}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
            'stroke="#d73027" stroke-dasharray="4 3"/>'
        )
        body.append(f'<text x="{left + 134}" y="{legend_y}">{escape(reference_label)}</text>')
    return _svg(w, h, body, "Accuracy by distance threshold")


def histogram_svg(bands: np.ndarray) -> str:
    """Bars: how many samples fall in each error band (the last bar: no usable answer)."""
    counts = np.bincount(bands, minlength=len(BANDS))
    w, h, left, bottom, top = 640, 300, 50, 50, 30
    plot_w, plot_h = w - left - 20, h - bottom - top
    slot = plot_w / len(BANDS)
    peak = max(1, int(counts.max()))
    body = [
        f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">'
        "Errors by distance band (samples)</text>",
        f'<line x1="{left}" x2="{w - 20}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    for i, (label, count) in enumerate(zip(BANDS, counts.tolist(), strict=True)):
        x = left + slot * i + slot * 0.15
        bar_h = plot_h * count / peak
        body.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{bar_h:.1f}" fill="{BAND_COLOURS[i]}"/>'
        )
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{top + plot_h - bar_h - 4:.1f}" '
            f'text-anchor="middle">{count}</text>'
        )
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{h - bottom + 16}" text-anchor="middle" '
            f'font-size="10">{escape(label)}</text>'
        )
    return _svg(w, h, body, "Errors by distance band")


def _ring_path(ring: Sequence[Sequence[float]], sx: float, sy: float) -> str:
    # equirectangular: x = (lon + 180) * sx, y = (90 - lat) * sy
    return "M" + "L".join(f"{(lon + 180) * sx:.1f},{(90 - lat) * sy:.1f}" for lon, lat in ring) + "Z"


def map_svg(truths: Sequence[TruthRow], bands: np.ndarray, geojson: dict[str, Any] | None = None) -> str:
    """Truth points coloured by error band on the Natural Earth outlines."""
    w, h = 720, 360
    sx, sy = w / 360, h / 180
    doc = geojson if geojson is not None else load_countries_geojson()
    paths = []
    for feature in doc["features"]:
        geom = feature["geometry"]
        polygons = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        d = "".join(_ring_path(ring, sx, sy) for polygon in polygons for ring in polygon)
        paths.append(f'<path d="{d}" fill="#f0f0f0" stroke="#999" stroke-width="0.4"/>')
    body = [f'<rect width="{w}" height="{h}" fill="#dbe9f6"/>', *paths]
    for t, band in zip(truths, bands.tolist(), strict=True):
        x, y = (t.lon + 180) * sx, (90 - t.lat) * sy
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{BAND_COLOURS[band]}" '
            f'stroke="#333" stroke-width="0.3"><title>{escape(t.id)}: {escape(BANDS[band])}</title></circle>'
        )
    legend = []
    for i, (label, colour) in enumerate(zip(BANDS, BAND_COLOURS, strict=True)):
        x = 8 + i * 100
        legend.append(f'<rect x="{x}" y="{h + 8}" width="10" height="10" fill="{colour}"/>')
        legend.append(f'<text x="{x + 14}" y="{h + 17}" font-size="10">{escape(label)}</text>')
    return _svg(w, h + 26, body + legend, "Error of each sample, at its true location")


# ------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "-"
    return str(value)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows),
    ]


def _summary_row(label: str, s: dict[str, Any]) -> list[Any]:
    return [
        label,
        s["n"],
        s["recall"],
        *(s["accuracy_km"][k] for k in THRESHOLD_KEYS),
        s["geoscore"],
        s["median_km"],
        *s["admin_accuracy"].values(),
        *s["admin_accuracy_reverse"].values(),
    ]


SUMMARY_COLUMNS = [
    "run",
    "n",
    "recall",
    *(f"{k} km" for k in THRESHOLD_KEYS),
    "GeoScore",
    "median km",
    "country",
    "region",
    "city",
    "country (rev.)",
    "region (rev.)",
    "city (rev.)",
]


def markdown(document: dict[str, Any], paper: dict[str, Any]) -> str:
    s = document["summary"]
    lines = [
        "# Evaluation report",
        "",
        f"- model: `{document.get('model') or '-'}`",
        f"- mode: {document['mode'].upper()} (GaGA section V-A3)",
        f"- samples: {s['n']}",
        "",
        "## This model (our numbers)",
        "",
        "Accuracies are percent of ALL samples (an invalid answer is a miss at every threshold and scores",
        "0 GeoScore); the median error is over answers with coordinates; admin-level accuracy by names",
        "(alias-aware) and, marked (rev.), by reverse-geocoding the predicted coordinates (OSV-5M).",
        "",
        *_table(SUMMARY_COLUMNS, [_summary_row(document["mode"].upper(), s)]),
        "",
    ]
    interactive = document.get("interactive")
    if interactive:
        labels = {"direct": "direct inquiry", "q": "+ Q (first turn)", "qa": "+ QA (first turn)",
                  "q_followup": "+ Q (follow-up turn)", "qa_followup": "+ QA (follow-up turn)"}
        lines += [
            "## Interactive evaluation (GaGA Table III protocol, our numbers)",
            "",
            *_table(SUMMARY_COLUMNS, [_summary_row(labels[k], v) for k, v in interactive.items()]),
            "",
        ]
    lines += ["## Plots", "", *(f"![{p[:-4]}]({p})" for p in PLOTS), ""]
    lines += [
        "## Published results from the GaGA paper (NOT this model)",
        "",
        "The rows below are copied from the paper for comparison. They were measured by the GaGA",
        "authors on their datasets (named per table), with their models; they are not geodesk results.",
        "",
    ]
    for key in ("I", "II", "III", "IV", "VII"):
        table = paper["tables"][key]
        lines += [
            f"### GaGA Table {key}: {table['title']} (paper's numbers; dataset: {table['dataset']})",
            "",
            *_table(table["columns"], table["rows"]),
            "",
        ]
    return "\n".join(lines)


def write_report(
    out_dir: Path, document: dict[str, Any], truths: Sequence[TruthRow], predictions: Sequence[PredictionRow]
) -> list[Path]:
    """report.md and the three SVG plots in ``out_dir``; returns their paths."""
    paper = load_paper_tables()
    d = distances_km(
        [p.lat for p in predictions],
        [p.lon for p in predictions],
        [p.valid for p in predictions],
        [t.lat for t in truths],
        [t.lon for t in truths],
    )
    bands = error_bands(d)
    gaga = next(row for row in paper["tables"]["II"]["rows"] if row[0] == "GaGA")
    reference = dict(zip(THRESHOLD_KEYS, gaga[2:7], strict=True))
    files = {
        "accuracy_by_threshold.svg": accuracy_svg(
            document["summary"]["accuracy_km"], reference, "GaGA, paper, GWS15k (not ours)"
        ),
        "error_histogram.svg": histogram_svg(bands),
        "error_map.svg": map_svg(truths, bands),
        "report.md": markdown(document, paper),
    }
    written = []
    for name, text in files.items():
        path = out_dir / name
        write_text_atomic(path, text)
        written.append(path)
    return written
