"""Map layers an analyst brings into a case: KML, KMZ, GeoJSON and GPX files (ADR 0035).

Each file is read once with a well-kept reader (fastkml for KML and a KMZ's main document, gpxpy for
GPX, the json module for GeoJSON) into a GeoJSON FeatureCollection whose features keep only their
geometry and two plain-text properties, ``name`` and ``description``; nothing a file references is
fetched or opened (KML NetworkLinks, icons, a KMZ's other members), and nothing in it runs. The
result is stored in the case as ``layers/<sha256>.geojson`` (the SHA-256 of the original file) and
listed in ``layers/layers.json`` with its name, colour and visibility; both travel in the case
archive. The map page escapes every name before it is shown.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_json
from geodesk.digest import sha256_file

LAYERS_DIR = "layers"
INDEX = "layers.json"
MAX_LAYER_BYTES = 64 * 1024 * 1024
FORMATS = {".kml": "kml", ".kmz": "kmz", ".geojson": "geojson", ".json": "geojson", ".gpx": "gpx"}
PALETTE = ("#e8590c", "#2f9e44", "#1971c2", "#ae3ec9", "#f08c00", "#0c8599")
GEOMETRY_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
)
_TEXT_CHARS = 2000  # a name or description longer than this is cut (it is shown in a popup)


class LayerError(ValueError):
    """A file that cannot become a layer, or a layer that is not there; the message says why."""


@dataclass(frozen=True, slots=True)
class CaseLayer:
    id: str  # the first 12 hex digits of the original file's SHA-256
    name: str
    source_name: str
    source_format: str  # kml | kmz | geojson | gpx
    features: int
    colour: str
    visible: bool
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:_TEXT_CHARS]


def _feature(geometry: dict[str, Any] | None, name: Any, description: Any) -> dict[str, Any] | None:
    if not geometry or geometry.get("type") not in GEOMETRY_TYPES:
        return None
    geometry = {k: v for k, v in geometry.items() if k in ("type", "coordinates", "geometries")}
    return {
        "type": "Feature",
        "geometry": json.loads(json.dumps(geometry)),  # tuples -> lists, and only JSON values remain
        "properties": {"name": _text(name), "description": _text(description)},
    }


def _from_kml(data: bytes) -> list[dict[str, Any]]:
    import warnings

    with warnings.catch_warnings():  # fastkml warns at import that lxml (pretty printing) is absent
        warnings.simplefilter("ignore", UserWarning)
        from fastkml import kml

    try:
        document = kml.KML.from_string(data.decode("utf-8-sig"))
    except Exception as exc:  # fastkml raises several parser error types; all mean "not readable KML"
        raise LayerError(f"not readable KML ({type(exc).__name__}: {exc})") from None
    out: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        for child in getattr(node, "features", None) or []:
            geometry = getattr(child, "geometry", None)
            if geometry is not None:
                feature = _feature(
                    geometry.__geo_interface__, child.name, getattr(child, "description", None)
                )
                if feature is not None:
                    out.append(feature)
            walk(child)

    walk(document)
    return out


def _from_kmz(data: bytes) -> list[dict[str, Any]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            kml_names = [n for n in zf.namelist() if n.lower().endswith(".kml") and "/" not in n.strip("/")]
            if not kml_names:
                raise LayerError("a KMZ file must hold a .kml document at its top level (doc.kml)")
            main = "doc.kml" if "doc.kml" in kml_names else sorted(kml_names)[0]
            info = zf.getinfo(main)
            if info.file_size > MAX_LAYER_BYTES:
                raise LayerError(
                    f"its {main} unpacks to {info.file_size} bytes, over the {MAX_LAYER_BYTES} limit"
                )
            return _from_kml(zf.read(main))
    except zipfile.BadZipFile:
        raise LayerError("not a KMZ (zip) file") from None


def _from_gpx(data: bytes) -> list[dict[str, Any]]:
    import gpxpy
    import gpxpy.gpx

    try:
        gpx = gpxpy.parse(data.decode("utf-8-sig"))
    except (gpxpy.gpx.GPXException, UnicodeDecodeError, ValueError) as exc:
        raise LayerError(f"not readable GPX ({exc})") from None
    out: list[dict[str, Any] | None] = []
    for wpt in gpx.waypoints:
        out.append(
            _feature(
                {"type": "Point", "coordinates": [wpt.longitude, wpt.latitude]}, wpt.name, wpt.description
            )
        )
    for track in gpx.tracks:
        lines = [
            [[p.longitude, p.latitude] for p in seg.points] for seg in track.segments if len(seg.points) > 1
        ]
        if lines:
            out.append(
                _feature({"type": "MultiLineString", "coordinates": lines}, track.name, track.description)
            )
    for route in gpx.routes:
        points = [[p.longitude, p.latitude] for p in route.points]
        if len(points) > 1:
            out.append(_feature({"type": "LineString", "coordinates": points}, route.name, route.description))
    return [f for f in out if f is not None]


def _from_geojson(data: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LayerError(f"not readable GeoJSON ({exc})") from None
    if not isinstance(document, dict):
        raise LayerError("GeoJSON must be an object (a FeatureCollection, a Feature or a geometry)")
    if document.get("type") == "FeatureCollection":
        items = document.get("features") or []
    elif document.get("type") == "Feature":
        items = [document]
    else:
        items = [{"type": "Feature", "geometry": document, "properties": {}}]
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        raw_props = item.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        geometry = item.get("geometry") if isinstance(item.get("geometry"), dict) else None
        feature = _feature(geometry, props.get("name"), props.get("description"))
        if feature is not None:
            out.append(feature)
    return out


READERS = {"kml": _from_kml, "kmz": _from_kmz, "geojson": _from_geojson, "gpx": _from_gpx}


def layers_dir(case_path: Path) -> Path:
    return Path(case_path) / LAYERS_DIR


def list_layers(case_path: Path) -> list[CaseLayer]:
    path = layers_dir(case_path) / INDEX
    if not path.is_file():
        return []
    try:
        return [CaseLayer(**item) for item in json.loads(path.read_text(encoding="utf-8"))["layers"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LayerError(f"{path} is unreadable ({exc}); restore it from the case archive") from None


def _save(case_path: Path, layers: list[CaseLayer]) -> None:
    atomic_write_json(layers_dir(case_path) / INDEX, {"version": 1, "layers": [x.as_dict() for x in layers]})


def import_layer(case_path: Path, source: Path, name: str | None = None) -> CaseLayer:
    """Read a KML / KMZ / GeoJSON / GPX file into the case as a layer (the same file twice: one layer)."""
    source = Path(source)
    fmt = FORMATS.get(source.suffix.lower())
    if fmt is None:
        raise LayerError(f"{source.name}: give a .kml, .kmz, .geojson, .json or .gpx file")
    try:
        size = source.stat().st_size
        if size > MAX_LAYER_BYTES:
            raise LayerError(f"{source.name} is {size} bytes, over the {MAX_LAYER_BYTES}-byte layer limit")
        data = source.read_bytes()
    except OSError as exc:
        raise LayerError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        features = READERS[fmt](data)
    except LayerError as exc:
        raise LayerError(f"{source.name}: {exc}") from None
    if not features:
        raise LayerError(f"{source.name} holds no point, line or polygon to draw")
    digest = sha256_file(source)
    folder = layers_dir(case_path)
    atomic_write_json(
        folder / f"{digest}.geojson", {"type": "FeatureCollection", "features": features}, indent=None
    )
    layers = list_layers(case_path)
    same = [i for i, x in enumerate(layers) if x.sha256 == digest]
    layer = CaseLayer(
        id=digest[:12],
        name=name or source.stem,
        source_name=source.name,
        source_format=fmt,
        features=len(features),
        colour=layers[same[0]].colour if same else PALETTE[len(layers) % len(PALETTE)],
        visible=True,
        sha256=digest,
    )
    if same:
        layers[same[0]] = layer
    else:
        layers.append(layer)
    _save(case_path, layers)
    return layer


def find_layer(case_path: Path, ref: str) -> CaseLayer:
    hits = [x for x in list_layers(case_path) if ref and (x.id.startswith(ref.lower()) or x.name == ref)]
    if len(hits) != 1:
        raise LayerError(
            f"no layer {ref!r} in this case; `geodesk layer list CASE` shows them"
            if not hits
            else f"{ref!r} matches {len(hits)} layers; give more of the id"
        )
    return hits[0]


def set_visible(case_path: Path, ref: str, visible: bool) -> CaseLayer:
    layer = replace(find_layer(case_path, ref), visible=visible)
    _save(case_path, [layer if x.sha256 == layer.sha256 else x for x in list_layers(case_path)])
    return layer


def remove_layer(case_path: Path, ref: str) -> CaseLayer:
    layer = find_layer(case_path, ref)
    _save(case_path, [x for x in list_layers(case_path) if x.sha256 != layer.sha256])
    (layers_dir(case_path) / f"{layer.sha256}.geojson").unlink(missing_ok=True)
    return layer


def page_layers(case_path: Path) -> list[dict[str, Any]]:
    """The case's layers for the map page: name, colour, visibility and features (plain text)."""
    out = []
    for layer in list_layers(case_path):
        path = layers_dir(case_path) / f"{layer.sha256}.geojson"
        try:
            collection = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LayerError(
                f"layer {layer.name} ({path.name}) is unreadable ({exc}); import it again"
            ) from None
        out.append({"id": layer.id, "name": layer.name, "colour": layer.colour, "visible": layer.visible,
                    "features": collection["features"]})  # fmt: skip
    return out


def case_map_layers(case_path: Path) -> list[dict[str, Any]]:
    """:func:`page_layers`, or none when the case's layer files are unreadable (the rest of the map
    still shows; `geodesk layer list` names the problem)."""
    try:
        return page_layers(case_path)
    except LayerError:
        return []
