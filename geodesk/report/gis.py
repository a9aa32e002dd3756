"""GIS exports of a case: GeoJSON (RFC 7946) for QGIS, KML 2.2 / KMZ for Google Earth, CSV for tables.

One list of features feeds every format: findings (with the radius, drawn as a geodesic circle in KML
and GeoJSON), model predictions (one per turn with a point), EXIF GPS points and the evidence's clues
that have a place (none yet carry coordinates of their own, so clues are exported as properties of
their evidence item's features and as CSV columns). Coordinates are WGS 84, longitude first in
GeoJSON as RFC 7946 requires. Every text value is escaped by the XML writer (ElementTree), never
formatted into markup by hand.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from geodesk.domain.model import ClueStatus
from geodesk.report.history import describe_prediction
from geodesk.store.case_store import CaseStore

KINDS = ("findings", "predictions", "exif", "clues")
FORMATS = (".geojson", ".json", ".kml", ".kmz", ".csv")
KML_NS = "http://www.opengis.net/kml/2.2"
EARTH_RADIUS_KM = 6371.0
_CIRCLE_POINTS = 64
_STYLES = {"finding": "2b8a3e", "prediction": "c92a2a", "exif": "1971c2"}


@dataclass(frozen=True, slots=True)
class Feature:
    kind: str  # "finding", "prediction", "exif"
    lat: float
    lon: float
    name: str
    properties: dict[str, Any] = field(default_factory=dict)
    radius_km: float | None = None


def circle(lat: float, lon: float, radius_km: float, n: int = _CIRCLE_POINTS) -> list[tuple[float, float]]:
    """A closed ring of (lon, lat) points at ``radius_km`` around the centre (destination-point formula)."""
    phi1, lam1 = math.radians(lat), math.radians(lon)
    delta = radius_km / EARTH_RADIUS_KM
    ring = []
    for i in range(n + 1):
        theta = 2 * math.pi * (i % n) / n
        phi2 = math.asin(math.sin(phi1) * math.cos(delta)
                         + math.cos(phi1) * math.sin(delta) * math.cos(theta))
        lam2 = lam1 + math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi1),
                                 math.cos(delta) - math.sin(phi1) * math.sin(phi2))
        ring.append(((math.degrees(lam2) + 540) % 360 - 180, math.degrees(phi2)))
    return ring


def accepted_clue_texts(store: CaseStore) -> dict[str, str]:
    """Each evidence item's accepted (or edited) clues as one "category: text; ..." string."""
    texts: dict[str, list[str]] = {}
    for c in store.clues.list():
        if c.status in (ClueStatus.ACCEPTED, ClueStatus.EDITED):
            texts.setdefault(c.evidence_sha256, []).append(f"{c.category}: {c.text}")
    return {sha: "; ".join(items) for sha, items in texts.items()}


def collect_features(store: CaseStore, what: Sequence[str]) -> list[Feature]:
    unknown = [w for w in what if w not in KINDS]
    if unknown:
        raise ValueError(f"--what takes {', '.join(KINDS)}; not {', '.join(unknown)}")
    features: list[Feature] = []
    clue_texts = accepted_clue_texts(store) if "clues" in what else {}
    for e in store.evidence.list():
        base: dict[str, Any] = {"evidence_sha256": e.sha256, "original_name": e.original_name}
        if "clues" in what:
            base["clues"] = clue_texts.get(e.sha256, "")
        if "exif" in what and e.gps is not None:
            features.append(Feature("exif", e.gps.lat, e.gps.lon, f"EXIF GPS: {e.original_name}",
                                    {**base, "kind": "exif", "taken_at": e.taken_at, "camera": e.camera}))
        if "findings" in what:
            f = store.findings.current(e.sha256)
            if f is not None:
                features.append(Feature("finding", f.lat, f.lon, f"Finding: {e.original_name}",
                                        {**base, "kind": "finding", "status": f.status.value,
                                         "radius_km": f.radius_km, "reasoning": f.reasoning,
                                         "version": f.version}, radius_km=f.radius_km))
        if "predictions" in what:
            for s in store.sessions.list(e.sha256):
                for t in store.turns.list(s.id or 0):
                    p = t.prediction
                    if p.lat is None or p.lon is None or not (-90 <= p.lat <= 90 and -180 <= p.lon <= 180):
                        continue
                    features.append(Feature(
                        "prediction", p.lat, p.lon, f"Session {s.id} turn {t.number}: {e.original_name}",
                        {**base, "kind": "prediction", "session": s.id, "turn": t.number,
                         "prediction": describe_prediction(p), "country": p.country, "region": p.region,
                         "city": p.city, "valid": p.valid, "model": f"{s.model.name}@{s.model.version}",
                         "model_sha256": s.model.sha256, "model_caveat": s.model.caveat}))
    return features


def to_geojson(features: Sequence[Feature]) -> str:
    out = []
    for f in features:
        out.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
                    "properties": {"name": f.name, **f.properties}})
        if f.radius_km:
            out.append({"type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in circle(
                            f.lat, f.lon, f.radius_km)]]},
                        "properties": {"name": f"{f.name} (radius)", **f.properties,
                                       "kind": "finding_radius"}})
    return json.dumps({"type": "FeatureCollection", "features": out}, ensure_ascii=False, indent=1)


# Characters XML 1.0 forbids (C0 controls other than tab/newline/return, surrogates, U+FFFE/U+FFFF):
# a KML with one of them is not well-formed and GIS readers refuse the whole file.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """Text for an XML element: forbidden characters shown as visible escapes (``\\x1b``)."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", "" if value is None else str(value))


def _coords(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{lon:.7f},{lat:.7f},0" for lon, lat in points)


def to_kml(features: Sequence[Feature], title: str) -> str:
    ET.register_namespace("", KML_NS)
    kml = ET.Element(f"{{{KML_NS}}}kml")
    doc = ET.SubElement(kml, f"{{{KML_NS}}}Document")
    ET.SubElement(doc, f"{{{KML_NS}}}name").text = xml_text(title)
    for kind, colour in _STYLES.items():
        style = ET.SubElement(doc, f"{{{KML_NS}}}Style", id=kind)
        icon = ET.SubElement(style, f"{{{KML_NS}}}IconStyle")
        ET.SubElement(icon, f"{{{KML_NS}}}color").text = "ff" + colour[4:6] + colour[2:4] + colour[0:2]
        line = ET.SubElement(style, f"{{{KML_NS}}}LineStyle")
        ET.SubElement(line, f"{{{KML_NS}}}color").text = "ff" + colour[4:6] + colour[2:4] + colour[0:2]
        ET.SubElement(line, f"{{{KML_NS}}}width").text = "2"
        poly = ET.SubElement(style, f"{{{KML_NS}}}PolyStyle")
        ET.SubElement(poly, f"{{{KML_NS}}}color").text = "40" + colour[4:6] + colour[2:4] + colour[0:2]
    for f in features:
        mark = ET.SubElement(doc, f"{{{KML_NS}}}Placemark")
        ET.SubElement(mark, f"{{{KML_NS}}}name").text = xml_text(f.name)
        ET.SubElement(mark, f"{{{KML_NS}}}styleUrl").text = f"#{f.kind}"
        data = ET.SubElement(mark, f"{{{KML_NS}}}ExtendedData")
        for key, value in f.properties.items():
            item = ET.SubElement(data, f"{{{KML_NS}}}Data", name=key)
            ET.SubElement(item, f"{{{KML_NS}}}value").text = xml_text(value)
        point = ET.SubElement(mark, f"{{{KML_NS}}}Point")
        ET.SubElement(point, f"{{{KML_NS}}}coordinates").text = _coords([(f.lon, f.lat)])
        if f.radius_km:
            ring_mark = ET.SubElement(doc, f"{{{KML_NS}}}Placemark")
            ET.SubElement(ring_mark, f"{{{KML_NS}}}name").text = xml_text(f"{f.name} (±{f.radius_km:g} km)")
            ET.SubElement(ring_mark, f"{{{KML_NS}}}styleUrl").text = f"#{f.kind}"
            polygon = ET.SubElement(ring_mark, f"{{{KML_NS}}}Polygon")
            outer = ET.SubElement(ET.SubElement(polygon, f"{{{KML_NS}}}outerBoundaryIs"),
                                  f"{{{KML_NS}}}LinearRing")
            ET.SubElement(outer, f"{{{KML_NS}}}coordinates").text = _coords(circle(f.lat, f.lon, f.radius_km))
    return ET.tostring(kml, encoding="unicode", xml_declaration=True)


def to_kmz(features: Sequence[Feature], title: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        # KMZ readers open the first .kml in the archive, by convention doc.kml.
        zf.writestr("doc.kml", to_kml(features, title))
    return buffer.getvalue()


CSV_COLUMNS = ("evidence_sha256", "original_name", "taken_at", "camera", "exif_lat", "exif_lon",
               "finding_lat", "finding_lon", "finding_radius_km", "finding_status", "finding_reasoning",
               "last_prediction", "last_prediction_lat", "last_prediction_lon", "model", "model_caveat",
               "clues")


def to_csv(store: CaseStore, what: Sequence[str]) -> str:
    """One row per evidence item: its EXIF point, current finding, last prediction and accepted clues."""
    features = collect_features(store, what)
    by_item: dict[str, dict[str, Any]] = {}
    for e in store.evidence.list():
        by_item[e.sha256] = {"evidence_sha256": e.sha256, "original_name": e.original_name,
                             "taken_at": e.taken_at or "", "camera": e.camera or ""}
    for f in features:
        row = by_item[f.properties["evidence_sha256"]]
        if f.kind == "exif":
            row.update(exif_lat=f.lat, exif_lon=f.lon)
        elif f.kind == "finding":
            row.update(finding_lat=f.lat, finding_lon=f.lon, finding_radius_km=f.radius_km,
                       finding_status=f.properties["status"], finding_reasoning=f.properties["reasoning"])
        elif f.kind == "prediction":  # turns come in session and turn order: the last one wins
            row.update(last_prediction=f.properties["prediction"], last_prediction_lat=f.lat,
                       last_prediction_lon=f.lon, model=f.properties["model"],
                       model_caveat=f.properties["model_caveat"] or "")
    if "clues" in what:
        for sha, text in accepted_clue_texts(store).items():
            by_item[sha]["clues"] = text
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for row in by_item.values():
        writer.writerow(row)
    return buffer.getvalue()
