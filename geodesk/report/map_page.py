"""The offline map page: a folium-offline Leaflet map with geodesk's own layer and a small JS API.

Nothing on the page reaches the network: Leaflet is inlined by ``offlinefolium`` (folium-offline), there
is no tile server, and the page's data travels as one JSON document. The map under the session is the
default basemap (ADR 0034): Natural Earth 1:10m vector tiles in one local PMTiles file
(resources/basemap/, built by tools/build_basemap.py), drawn by the vendored protomaps-leaflet bundle
(inlined) with geodesk's own paint and label rules, read through a small PMTiles source that takes
file:// bytes by Range request where the browser honours it and reads the whole file once where it
does not. Without that file the page falls back to the bundled 1:110m country outlines.

Safety: every piece of text that came from an image or a model (names, reasoning, hints, notes) is
``html.escape``-d here, in Python, and the whole document is JSON-encoded with ``<``, ``>``, ``&`` and
the JS line separators written as ``\\u`` escapes, so it can sit inside ``<script>`` or be passed to
``runJavaScript`` without ending the script or becoming markup. The page's JS only ever inserts those
pre-escaped strings, and numbers it has passed through ``Number()``.

The page API (``window.geodesk``): ``state`` (the last document), ``setState(doc, fit)``,
``selectTurn(n)``, ``setConstraint(doc)`` (the clue constraint layer, :func:`constraint_json`),
``summary()`` (counts for tests), ``map`` (the Leaflet map). When the page runs
inside Qt WebEngine with a QWebChannel transport, it connects to the object registered as
``geodeskBridge`` and calls ``mapClicked(lat, lon)`` on a map click and ``turnClicked(n)`` on a turn
marker click; the Qt layer injects ``qwebchannel.js`` (this module stays Qt-free).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.atomic import atomic_write_text
from geodesk.domain.model import CAVEAT_TEXT, Candidate, Evidence, Finding, GpsPoint, Turn
from geodesk.report.history import describe_hint, describe_prediction, flags_by_turn

if TYPE_CHECKING:
    from geodesk.store.turn_flags import TurnFlag

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
BASEMAP_FILE = "naturalearth-10m.pmtiles"
PROTOMAPS_BUNDLE = RESOURCES / "vendor" / "protomaps-leaflet" / "protomaps-leaflet.js"
BASEMAP_ATTRIBUTION = "Natural Earth 1:10m (public domain) · rendered with protomaps-leaflet (BSD-3)"
_REASONING_CHARS = 600  # popups show the start of the model's reasoning; the session panel has it all


@dataclass(frozen=True, slots=True)
class MapTurn:
    index: int
    lat: float
    lon: float
    label: str  # plain text; escaped when the document is built
    valid: bool
    candidates: tuple[Candidate, ...] = ()
    flags: tuple[str, ...] = ()  # plain text: the accepted clues the answer contradicts (describe_flag),
    # shown under the label in the popup, in red, and marking the marker


@dataclass(frozen=True, slots=True)
class MapState:
    title: str = ""
    turns: tuple[MapTurn, ...] = ()
    exif: GpsPoint | None = None
    exif_label: str = ""
    finding: Finding | None = None
    selected_turn: int | None = None
    turn_count: int = 0  # all turns of the session, with or without a point on the map
    # the case's map layers (services.case_layers.page_layers): id, name, colour, visible, features
    layers: tuple[dict[str, Any], ...] = ()


def map_state(
    turns: Sequence[Turn],
    evidence: Evidence | None = None,
    finding: Finding | None = None,
    selected_turn: int | None = None,
    layers: Sequence[dict[str, Any]] = (),
    caveat: str | None = None,
    flags: Sequence[TurnFlag] = (),
) -> MapState:
    """What the map shows for one evidence item's session: its turns with points, EXIF GPS, finding,
    and the case's own map layers. ``caveat``: the session model's (ModelIdentity.caveat); its
    sentence heads every turn's popup. ``flags``: the item's contradiction flags (those whose clue is
    accepted or edited mark their turn's marker and popup)."""
    map_turns: list[MapTurn] = []
    badge = CAVEAT_TEXT.get(caveat or "")
    against = flags_by_turn(flags)
    for turn in sorted(turns, key=lambda t: t.index):
        p = turn.prediction
        if p.lat is None or p.lon is None or not (-90 <= p.lat <= 90 and -180 <= p.lon <= 180):
            continue
        lines = [f"⚠ {badge}"] if badge else []
        lines.append(f"Turn {turn.number}: {describe_prediction(p)}")
        flagged = tuple(against.get(turn.id, [])) if turn.id is not None else ()
        lines += [f"Hint: {describe_hint(h)}" for h in turn.hints]
        if p.reasoning:
            reasoning = p.reasoning.strip()
            lines.append(reasoning[:_REASONING_CHARS] + ("…" if len(reasoning) > _REASONING_CHARS else ""))
        map_turns.append(
            MapTurn(turn.index, p.lat, p.lon, "\n".join(lines), p.valid, p.candidates, flagged)
        )
    exif_label = ""
    if evidence is not None and evidence.gps is not None:
        exif_label = f"EXIF GPS of {evidence.original_name}: {evidence.gps.lat:.5f}, {evidence.gps.lon:.5f}"
        if evidence.place is not None:
            names = [n for n in (evidence.place.city, evidence.place.region, evidence.place.country) if n]
            exif_label += "\n" + ", ".join(names)
    return MapState(
        title="" if evidence is None else evidence.original_name,
        turns=tuple(map_turns),
        exif=None if evidence is None else evidence.gps,
        exif_label=exif_label,
        finding=finding,
        selected_turn=selected_turn,
        turn_count=len(turns),
        layers=tuple(layers),
    )


def _text(value: str) -> str:
    """Plain text -> HTML-safe text; line breaks become <br> after escaping, so they cannot smuggle tags."""
    return html.escape(value, quote=True).replace("\n", "<br>")


def _flags_text(flags: tuple[str, ...]) -> str:
    """A flagged turn's popup block (HTML-escaped); empty for a turn no accepted clue contradicts."""
    if not flags:
        return ""
    return _text("\n".join([f"⚠ Contradicts {len(flags)} accepted clue(s):", *(f"• {f}" for f in flags)]))


def state_document(state: MapState) -> dict[str, Any]:
    """The JSON-able document the page draws; every text field is already HTML-escaped."""

    def candidate(c: Candidate) -> dict[str, Any]:
        names = ", ".join(n for n in (c.city, c.region, c.country) if n) or "unnamed"
        return {
            "lat": c.lat,
            "lon": c.lon,
            "share": c.share,
            "spread_km": c.spread_km,
            "label_html": _text(f"{names}: {c.share:.0%} of samples, spread {c.spread_km:.0f} km"),
        }

    finding = state.finding
    return {
        "title_html": _text(state.title),
        "turns": [
            {
                "index": t.index,
                "lat": t.lat,
                "lon": t.lon,
                "valid": t.valid,
                "flagged": bool(t.flags),
                "flags_html": _flags_text(t.flags),
                "label_html": _text(t.label),
                "candidates": [candidate(c) for c in t.candidates],
            }
            for t in state.turns
        ],
        "exif": None
        if state.exif is None
        else {"lat": state.exif.lat, "lon": state.exif.lon, "label_html": _text(state.exif_label)},
        "finding": None
        if finding is None
        else {
            "lat": finding.lat,
            "lon": finding.lon,
            "radius_km": finding.radius_km,
            "status": finding.status.value,
            "label_html": _text(
                f"Finding v{finding.version} ({finding.status.value}), radius {finding.radius_km:g} km"
                + (f"\n{finding.reasoning}" if finding.reasoning else "")
            ),
        },
        "selected_turn": state.selected_turn,
        "turn_count": state.turn_count,
        "layers": [
            {
                "id": str(layer["id"]),
                "name_html": _text(str(layer["name"])),
                "colour": _colour(str(layer.get("colour", ""))),
                "visible": bool(layer.get("visible", True)),
                "features": [_layer_feature(f) for f in layer["features"]],
            }
            for layer in state.layers
        ],
    }


# The clue constraint's colours on the map, by verdict (ADR 0039); neutral countries are not drawn.
CONSTRAINT_COLOURS = {"supported": "#2b8a3e", "contested": "#e8590c", "ruled_out": "#c92a2a"}
SPATIAL_CLUE_COLOUR = "#f59f00"  # sun bands, named places


def constraint_layer(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """The page's form of a combined constraint (``services.clue_engine.constraint_for``): the countries
    an accepted clue supports, contests or rules out, shaded by their share, and the spatial clues (sun
    bands, places). Every text is escaped here, as for the rest of the page; None: no layer."""
    if not document:
        return None
    features: list[dict[str, Any]] = []
    counted = [f for f in document.get("geojson", {}).get("features", []) if f.get("geometry")]
    top = max((float(f["properties"].get("share", 0.0)) for f in counted
               if f["properties"].get("layer") == "country"), default=0.0) or 1.0
    for f in counted:
        props = f["properties"]
        if props.get("layer") == "country":
            status = str(props.get("status", "neutral"))
            if status not in CONSTRAINT_COLOURS:
                continue
            share = float(props.get("share", 0.0))
            # A supported or contested country is shaded by its share of the leader's: a country one weak
            # clue backs while a strong one rules it out stays faint, not as loud as the leader.
            opacity = 0.12 if status == "ruled_out" else 0.04 + 0.56 * min(share / top, 1.0)
            name = f"{props.get('country', '')} ({props.get('country_code', '')})"
            label = f"{name}: {share:.1%}\n{props.get('reason', '')}"
            features.append({
                "type": "Feature",
                "geometry": f["geometry"],
                "properties": {"kind": "country", "status": status, "colour": CONSTRAINT_COLOURS[status],
                               "opacity": round(opacity, 3), "label_html": _text(label)},
            })
        else:
            label = f"{props.get('layer', 'clue')} clue {props.get('clue_id', '')}: {props.get('text', '')}"
            features.append({
                "type": "Feature",
                "geometry": f["geometry"],
                "properties": {"kind": _text(str(props.get("layer", "clue"))), "status": "area",
                               "colour": SPATIAL_CLUE_COLOUR, "opacity": 0.3, "label_html": _text(label)},
            })
    leading = document.get("leading") or []
    title = ""
    if leading:
        title = f"Clues lead to {leading[0].get('country', '')} ({float(leading[0].get('share', 0)):.0%})"
    return {"title_html": _text(title), "features": features}


def constraint_json(document: dict[str, Any] | None) -> str:
    return safe_json(constraint_layer(document))


_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _colour(value: str) -> str:
    return value if _COLOUR.fullmatch(value) else "#e8590c"


def _layer_feature(feature: dict[str, Any]) -> dict[str, Any]:
    """A case layer's feature with its texts escaped: the page never sees a raw name."""
    props = feature.get("properties") or {}
    return {
        "type": "Feature",
        "geometry": feature["geometry"],
        "properties": {
            "name_html": _text(str(props.get("name") or "")),
            "description_html": _text(str(props.get("description") or "")),
        },
    }


_JINJA_OPENER = re.compile(r"\{(?=[{%#])")


def safe_json(value: Any) -> str:
    """JSON that is also safe inside <script>, as a runJavaScript expression, and inside folium.

    branca renders each element's output a second time as a Jinja template, so a model answer holding
    ``{{ ... }}`` would be evaluated while the page is built. JSON structure never contains ``{{``,
    ``{%`` or ``{#``, so any such ``{`` is inside a string, where ``\\u007b`` is the same character.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return _JINJA_OPENER.sub(r"\\u007b", text)


def state_json(state: MapState) -> str:
    return safe_json(state_document(state))


def default_borders_path() -> Path | None:
    """The country borders GeoJSON bundled under resources/geo/ (the first one, by name), if any."""
    folder = RESOURCES / "geo"
    candidates = sorted(folder.glob("*.geojson")) + sorted(folder.glob("*.geo.json"))
    return candidates[0] if candidates else None


def load_borders(path: Path) -> Any:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"the borders file {path} cannot be read as GeoJSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("type") not in ("FeatureCollection", "Feature"):
        raise ValueError(f"the borders file {path} is not a GeoJSON FeatureCollection")
    return document


def default_basemap_path() -> Path | None:
    """resources/basemap/naturalearth-10m.pmtiles when it has been built, else None."""
    path = RESOURCES / "basemap" / BASEMAP_FILE
    return path if path.is_file() else None


def basemap_document(path: Path) -> dict[str, Any]:
    """What the page needs to draw a PMTiles basemap: its file:// URL and attribution."""
    if not path.is_file():
        raise ValueError(f"the basemap {path} does not exist; build it with tools/build_basemap.py")
    return {"url": path.resolve().as_uri(), "attribution": BASEMAP_ATTRIBUTION, "max_data_zoom": 8}


def protomaps_bundle() -> str:
    """The vendored renderer's source. branca renders the page as a Jinja template a second time, so
    the bundle must hold no Jinja opener (5.1.0 has none; a new version is checked here)."""
    try:
        text = PROTOMAPS_BUNDLE.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(
            f"the map renderer {PROTOMAPS_BUNDLE} is missing ({exc}); "
            "restore it with tools/vendor_protomaps.py"
        ) from None
    if _JINJA_OPENER.search(text) or "</script" in text:
        raise ValueError(
            f"{PROTOMAPS_BUNDLE} cannot be inlined (it holds '{{{{', '{{%', '{{#' or '</script')"
        )
    return text


def build_map_page(
    state: MapState | None = None,
    *,
    borders: Path | bool | None = True,
    tiles_dir: Path | None = None,
    tile_ext: str = "png",
    basemap: Path | bool | None = True,
    view: tuple[float, float, int] | None = None,
    tilesets: Sequence[dict[str, Any]] = (),
) -> str:
    """The whole HTML page. ``basemap=True`` uses :func:`default_basemap_path` (when built), a path
    that PMTiles file, ``False``/``None`` none. ``borders=True`` uses :func:`default_borders_path`
    when there is no basemap; ``False``/``None``: none.

    ``tiles_dir`` is a local ``{z}/{x}/{y}.<ext>`` tile folder; tiles are then drawn over the basemap.
    ``view`` (lat, lon, zoom) opens the map there instead of around the session's points.
    ``tilesets`` are an administrator's installed PMTiles sets (``services.map_tiles.page_tilesets``),
    drawn over the basemap inside their bounds: vector sets in the Protomaps basemap schema, raster
    sets as images.
    """
    import offlinefolium  # 0.4 s import: only when a page is built (in a worker, by the Qt layer)
    from branca.element import MacroElement
    from offlinefolium.template import Template

    basemap_path = default_basemap_path() if basemap is True else (basemap or None)
    basemap_doc = None if basemap_path is None else basemap_document(Path(basemap_path))
    if borders is True:
        borders_path = None if basemap_doc is not None else default_borders_path()
    else:
        borders_path = borders or None
    borders_doc = None if borders_path is None else load_borders(Path(borders_path))

    fmap = offlinefolium.Map(
        location=[20, 0],
        zoom_start=2,
        tiles=None,
        world_copy_jump=True,
        control_scale=True,
        prefer_canvas=False,
    )
    # Only Leaflet itself is needed; jQuery, Bootstrap and the awesome-markers fonts would add 1 MB.
    fmap.default_js = [(n, u) for n, u in fmap.default_js if n == "leaflet"]
    fmap.default_css = [(n, u) for n, u in fmap.default_css if n == "leaflet_css"]
    if tiles_dir is not None:
        if not Path(tiles_dir).is_dir():
            raise ValueError(f"the tile folder {tiles_dir} does not exist; fix it in Settings or clear it")
        url = Path(tiles_dir).resolve().as_uri() + "/{z}/{x}/{y}." + tile_ext
        offlinefolium.TileLayer(tiles=url, attr="local tiles", name="local tiles", max_zoom=19).add_to(fmap)

    layer: Any = MacroElement()  # type: ignore[no-untyped-call]
    layer._name = "GeodeskLayer"
    layer._template = Template(
        "{% macro header(this, kwargs) %}<style>"
        + _CSS
        + "</style><script>"
        + "{{ this.renderer_js }}"
        + _JS
        + "</script>{% endmacro %}"
        "{% macro script(this, kwargs) %}"
        "window.geodesk.init({{ this._parent.get_name() }}, {{ this.state_json }}, {{ this.borders_json }},"
        " {{ this.basemap_json }}, {{ this.view_json }}, {{ this.tilesets_json }});"
        "{% endmacro %}"
    )
    # the renderer only when there is a basemap to draw; "</script" cannot occur in the bundle
    needs_renderer = basemap_doc is not None or bool(tilesets)
    layer.renderer_js = protomaps_bundle() if needs_renderer else ""
    layer.tilesets_json = safe_json(
        [
            {
                "id": str(t["id"]),
                "name_html": _text(str(t["name"])),
                "url": str(t["url"]),
                "kind": "vector" if t["kind"] == "vector" else "raster",
                "mime": "image/" + str(t["tile_format"]),
                "min_zoom": int(t["min_zoom"]),
                "max_zoom": int(t["max_zoom"]),
                "bounds": [float(v) for v in t["bounds"]],
            }
            for t in tilesets
        ]
    )
    layer.basemap_json = "null" if basemap_doc is None else safe_json(basemap_doc)
    layer.view_json = "null" if view is None else safe_json([float(view[0]), float(view[1]), int(view[2])])
    # Values are substituted, never re-parsed as template text, so model text cannot inject Jinja.
    layer.state_json = state_json(state or MapState())
    layer.borders_json = "null" if borders_doc is None else safe_json(borders_doc)
    fmap.add_child(layer)
    page: str = fmap.get_root().render()
    return page


def write_map_page(path: Path, state: MapState | None = None, **options: Any) -> Path:
    """Build the page and write it atomically (a half-written page never replaces a good one)."""
    page = build_map_page(state, **options)
    atomic_write_text(path, page)
    return Path(path)


_CSS = """
html, body { background: #aad3df; }
.gd-turn { background: #1f5fbf; color: #fff; border: 2px solid #fff; border-radius: 50%; width: 24px;
  height: 24px; line-height: 20px; text-align: center; font: bold 12px sans-serif; box-sizing: border-box;
  box-shadow: 0 0 3px rgba(0,0,0,.6); }
.gd-turn.gd-invalid { background: #888; }
.gd-turn.gd-flagged { border: 3px solid #c92a2a; box-shadow: 0 0 0 2px #fff, 0 0 5px 2px #c92a2a; }
.gd-turn.gd-flagged::after { content: "!"; position: absolute; top: -9px; right: -9px; width: 14px;
  height: 14px; line-height: 14px; border-radius: 50%; background: #c92a2a; color: #fff;
  font: bold 10px sans-serif; }
.gd-turn { position: relative; }
.gd-flag-popup { color: #c92a2a; font-weight: bold; }
.gd-turn.gd-selected { background: #e8590c; width: 30px; height: 30px; line-height: 26px; font-size: 14px; }
.gd-exif { background: #2b8a3e; color: #fff; border: 2px solid #fff; border-radius: 3px; font: bold 10px
  sans-serif; padding: 1px 3px; white-space: nowrap; box-shadow: 0 0 3px rgba(0,0,0,.6); }
.gd-title { background: rgba(255,255,255,.85); padding: 2px 6px; font: 12px sans-serif; }
.gd-legend { background: rgba(255,255,255,.9); padding: 4px 8px; font: 11px sans-serif; line-height: 16px;
  border-radius: 4px; box-shadow: 0 0 3px rgba(0,0,0,.3); }
.gd-legend i { display: inline-block; width: 18px; height: 0; margin-right: 6px; vertical-align: middle; }
.gd-legend b { display: inline-block; width: 10px; height: 10px; margin: 0 10px 0 4px; vertical-align: middle;
  border-radius: 50%; }
"""

# The page's behaviour. Text fields (``*_html``) arrive escaped; numbers go through Number().
_JS = r"""
(function () {
  "use strict";
  var G = window.geodesk = {state: null, map: null, bridge: null, ready: false, selected: null,
                            turnMarkers: {}, clicks: 0, lastClick: null};
  function num(v) { var n = Number(v); return isFinite(n) ? n : 0; }
  function wrapLon(lon) { return ((((lon + 180) % 360) + 360) % 360) - 180; }

  // A PMTiles byte source for local files. Qt WebEngine answers a file:// fetch with a Range header
  // with just those bytes but no Content-Length, which the stock FetchSource refuses; a browser that
  // ignores the header (or forbids file:// fetch) gets the whole file read once, by XHR, and sliced.
  function FileSource(url, stats) {
    this.url = url; this.stats = stats; this.mode = null; this.whole = null; this.loading = null;
  }
  FileSource.prototype.getKey = function () { return this.url; };
  FileSource.prototype.readWhole = function () {
    var url = this.url, self = this;
    if (!this.loading) {
      this.loading = new Promise(function (resolve, reject) {
        var x = new XMLHttpRequest();
        x.open("GET", url);
        x.responseType = "arraybuffer";
        x.onload = function () {
          if (x.response) { resolve(x.response); } else { reject(new Error("empty")); }
        };
        x.onerror = function () { reject(new Error("cannot read " + url)); };
        x.send();
      }).then(function (buf) { self.whole = buf; return buf; });
    }
    return this.loading;
  };
  FileSource.prototype.getBytes = function (offset, length, signal) {
    var self = this, stats = this.stats;
    stats.requests += 1;
    function slice(buf) { stats.bytes += Math.min(length, buf.byteLength - offset);
                          return {data: buf.slice(offset, offset + length)}; }
    if (this.whole) { return Promise.resolve(slice(this.whole)); }
    if (this.mode === "whole") { return this.readWhole().then(slice); }
    var range = "bytes=" + offset + "-" + (offset + length - 1);
    return fetch(this.url, {headers: {Range: range}, signal: signal})
      .then(function (r) { return r.arrayBuffer(); })
      .then(function (buf) {
        if (self.mode === "range" || (offset === 0 && buf.byteLength === length)) {
          self.mode = "range"; stats.mode = "range"; stats.bytes += buf.byteLength; return {data: buf};
        }
        // the whole file came back: the header was ignored, or the file is shorter than the request
        self.mode = "whole"; stats.mode = "whole"; self.whole = buf; return slice(buf);
      }, function (err) {
        if (signal && signal.aborted) { throw err; }
        self.mode = "whole"; stats.mode = "whole-xhr"; return self.readWhole().then(slice);
      });
  };

  // geodesk's paint and label rules over the basemap's layers (see tools/build_basemap.py).
  function basemapRules(P) {
    var water = "#aad3df";
    var paint = [
      {dataLayer: "land", symbolizer: new P.PolygonSymbolizer({fill: "#f2efe9"})},
      {dataLayer: "lakes", symbolizer: new P.PolygonSymbolizer({fill: water})},
      {dataLayer: "rivers", symbolizer: new P.LineSymbolizer({color: "#7fb2d6",
        width: function (z) { return z < 4 ? 0.6 : z < 7 ? 1.0 : 1.6; }})},
      {dataLayer: "boundaries", filter: function (z, f) { return f.props.kind === "region"; },
        symbolizer: new P.LineSymbolizer({color: "#b7a2c6", width: function (z) { return z < 5 ? 0.5 : 0.9; },
                                          dash: [3, 2]})},
      {dataLayer: "boundaries", filter: function (z, f) { return f.props.kind === "country"; },
        symbolizer: new P.LineSymbolizer({color: "#8c6a9e",
                                          width: function (z) { return z < 4 ? 0.9 : 1.6; }})}
    ];
    // Scale-aware density: a place is labelled from the zoom its rank allows (big cities first), its
    // font grows with its rank, and the labeler drops what would collide.
    function placeFont(z, f) {
      var r = f ? Number(f.props.rank) : 10;
      return (r <= 2 ? "600 14px" : r <= 5 ? "600 12px" : "11px") + " sans-serif";
    }
    var label = [
      {dataLayer: "country_labels", symbolizer: new P.CenteredTextSymbolizer({labelProps: ["name"],
        font: "600 13px sans-serif", fill: "#5c4a66", stroke: "#f2efe9", width: 2,
        textTransform: "uppercase"})},
      {dataLayer: "places", filter: function (z, f) { return Number(f.props.rank) <= z + 2; },
        symbolizer: new P.GroupSymbolizer([
          new P.CircleSymbolizer({radius: 2.5, fill: "#333", stroke: "#fff", width: 1}),
          new P.OffsetTextSymbolizer({labelProps: ["name"], font: placeFont, fill: "#222", stroke: "#fff",
                                      width: 2, offsetX: 4, offsetY: 4})
        ])},
      {dataLayer: "region_labels", filter: function (z) { return z >= 5; },
        symbolizer: new P.CenteredTextSymbolizer({labelProps: ["name"], font: "italic 11px sans-serif",
          fill: "#8c6a9e", stroke: "#f2efe9", width: 2})},
      {dataLayer: "rivers", filter: function (z, f) { return z >= 5 && f.props.name; },
        symbolizer: new P.LineLabelSymbolizer({labelProps: ["name"], font: "italic 10px sans-serif",
          fill: "#3f7fb0", stroke: "#f2efe9", width: 2})},
      {dataLayer: "lakes", filter: function (z, f) { return z >= 6 && f.props.name; },
        symbolizer: new P.CenteredTextSymbolizer({labelProps: ["name"], font: "italic 10px sans-serif",
          fill: "#3f7fb0"})}
    ];
    return {paint: paint, label: label, background: water};
  }

  // PMTiles is not exported by the bundle; a source built from a name hands us its class.
  function pmtilesClass(P) { return new P.PmtilesSource("geodesk.pmtiles", false).p.constructor; }

  // An administrator's tile set over the basemap, inside its bounds (tiles outside are never asked for).
  function addTileSet(map, t, P) {
    var stats = {id: t.id, requests: 0, bytes: 0, loaded: 0, errors: 0, mode: null, kind: t.kind};
    var archive = new (pmtilesClass(P))(new FileSource(t.url, stats));
    var b = t.bounds, bounds = L.latLngBounds([num(b[1]), num(b[0])], [num(b[3]), num(b[2])]);
    var layer;
    if (t.kind === "vector") {
      layer = P.leafletLayer({url: archive, flavor: "light", lang: "en", bounds: bounds,
        maxDataZoom: num(t.max_zoom), attribution: ""});
    } else {
      var Raster = L.GridLayer.extend({createTile: function (coords, done) {
        var img = document.createElement("img");
        img.alt = "";
        archive.getZxy(coords.z, coords.x, coords.y).then(function (r) {
          if (!r) { done(null, img); return; }
          var url = URL.createObjectURL(new Blob([r.data], {type: t.mime}));
          img.onload = function () { URL.revokeObjectURL(url); done(null, img); };
          img.onerror = function () { URL.revokeObjectURL(url); done(new Error("bad tile"), img); };
          img.src = url;
        }, function (e) { done(e, img); });
        return img;
      }});
      layer = new Raster({bounds: bounds, maxNativeZoom: num(t.max_zoom), minNativeZoom: num(t.min_zoom)});
    }
    layer.on("tileload", function () { stats.loaded += 1; });
    layer.on("tileerror", function () { stats.errors += 1; });
    layer.addTo(map);
    return {layer: layer, stats: stats, name_html: t.name_html};
  }

  function addBasemap(map, doc) {
    var P = window.protomapsL;
    if (!P) { G.tiles.error = "the map renderer is missing"; return null; }
    var archive = new (pmtilesClass(P))(new FileSource(doc.url, G.tiles));
    G.tiles.archive = archive;
    var rules = basemapRules(P);
    var maxData = num(doc.max_data_zoom) || 8;
    var base = P.leafletLayer({url: archive, paintRules: rules.paint, labelRules: [],
      backgroundColor: rules.background, maxDataZoom: maxData, attribution: doc.attribution});
    var labels = P.leafletLayer({url: archive, paintRules: [], labelRules: rules.label,
      maxDataZoom: maxData, attribution: ""});
    base.on("tileload", function () { G.tiles.loaded += 1; });
    base.on("tileerror", function () { G.tiles.errors += 1; });
    labels.on("tileload", function () { G.tiles.labelTiles += 1; });
    base.addTo(map); labels.addTo(map);
    archive.getHeader().then(function (h) {
      G.tiles.header = {minZoom: h.minZoom, maxZoom: h.maxZoom, tileType: h.tileType};
    }, function (e) { G.tiles.error = String(e); });
    return {base: base, labels: labels};
  }

  function addLegend(map, hasBasemap) {
    var legend = L.control({position: "bottomleft"});
    legend.onAdd = function () {
      var d = L.DomUtil.create("div", "gd-legend");
      var rows = [];
      if (hasBasemap) {
        rows.push('<i style="border-top:2px solid #8c6a9e"></i>country border');
        rows.push('<i style="border-top:1px dashed #b7a2c6"></i>province / state');
        rows.push('<i style="border-top:2px solid #7fb2d6"></i>river');
      }
      rows.push('<b style="background:#1f5fbf"></b>model turn (orange: selected)');
      rows.push('<b style="background:#1f5fbf;box-shadow:0 0 0 2px #c92a2a"></b>' +
                "turn against an accepted clue");
      rows.push('<b style="background:#2b8a3e;border-radius:2px"></b>EXIF GPS point');
      rows.push('<b style="background:#c2255c"></b>finding and its radius');
      rows.push('<b style="background:#7048e8"></b>sampled candidates');
      rows.push('<b style="background:#2b8a3e;border-radius:0"></b>clues support ' +
                '<b style="background:#c92a2a;border-radius:0"></b>rule out');
      rows.push('<b style="background:#f59f00;border-radius:0"></b>sun band, place read');
      d.innerHTML = rows.join("<br>");
      return d;
    };
    legend.addTo(map);
    return legend;
  }

  G.tiles = {requests: 0, bytes: 0, loaded: 0, labelTiles: 0, errors: 0, mode: null, header: null,
             error: null};

  G.init = function (map, state, borders, basemap, view, tilesets) {
    G.map = map;
    var overlays = {};
    G.basemap = basemap ? addBasemap(map, basemap) : null;
    G.tilesets = [];
    (tilesets || []).forEach(function (t) {
      if (!window.protomapsL) { return; }
      var added = addTileSet(map, t, window.protomapsL);
      G.tilesets.push(added);
      overlays["Installed tiles: " + added.name_html] = added.layer;
    });
    if (G.basemap) {
      G.basemap.labels.bringToFront();
      overlays["Place, province and river names"] = G.basemap.labels;
    }
    if (borders) {
      L.geoJSON(borders, {interactive: false,
        style: {color: "#6b7280", weight: 0.8, fillColor: "#f2efe9", fillOpacity: 1}}).addTo(map);
    }
    G.overlay = L.layerGroup().addTo(map);
    overlays["Session: turns, EXIF point, finding"] = G.overlay;
    G.info = L.control({position: "topright"});
    G.info.onAdd = function () { var d = L.DomUtil.create("div", "gd-title"); G.infoDiv = d; return d; };
    G.info.addTo(map);
    G.candidateLayer = L.layerGroup().addTo(map);
    overlays["Sampled candidates"] = G.candidateLayer;
    G.caseLayerGroup = L.layerGroup().addTo(map);
    overlays["Case layers"] = G.caseLayerGroup;
    G.constraintLayer = L.layerGroup().addTo(map);
    overlays["Clue constraint"] = G.constraintLayer;
    G.layerControl = L.control.layers(G.basemap ? {"Natural Earth 1:10m": G.basemap.base} : {}, overlays,
                                      {collapsed: true, position: "topright"}).addTo(map);
    G.legend = addLegend(map, !!G.basemap);
    map.on("click", function (e) {
      G.clicks += 1;
      G.lastClick = [e.latlng.lat, wrapLon(e.latlng.lng)];
      if (G.bridge) { G.bridge.mapClicked(G.lastClick[0], G.lastClick[1]); }
    });
    if (window.qt && window.qt.webChannelTransport && window.QWebChannel) {
      new QWebChannel(window.qt.webChannelTransport, function (channel) {
        G.bridge = channel.objects.geodeskBridge || null;
        if (G.bridge) { G.bridge.pageReady(); }
      });
    }
    G.setState(state, !view);
    if (view) { map.setView([num(view[0]), num(view[1])], num(view[2])); }
    G.ready = true;
  };

  function drawCaseLayers(layers) {
    G.caseLayerGroup.clearLayers();
    G.caseLayers = {};
    (layers || []).forEach(function (l) {
      var colour = /^#[0-9a-fA-F]{6}$/.test(l.colour) ? l.colour : "#e8590c";
      var drawn = L.geoJSON({type: "FeatureCollection", features: l.features || []}, {
        style: {color: colour, weight: 2, fillOpacity: 0.15},
        pointToLayer: function (f, ll) {
          return L.circleMarker(ll, {radius: 5, color: "#fff", weight: 1.5, fillColor: colour,
                                     fillOpacity: 1});
        },
        onEachFeature: function (f, layer) {
          var p = f.properties || {};
          var text = "<b>" + (p.name_html || "") + "</b>" +
            (p.description_html ? "<br>" + p.description_html : "");
          layer.bindPopup('<div class="gd-layer-popup">' + l.name_html + "<br>" + text + "</div>");
        }
      });
      G.caseLayers[l.id] = {layer: drawn, features: (l.features || []).length, visible: !!l.visible,
                            name_html: l.name_html};
      if (l.visible) { drawn.addTo(G.caseLayerGroup); }
    });
  }

  G.setState = function (state, fit) {
    // layers null: the case's layers are those drawn already (the host sends them when they change)
    if (state.layers === null || state.layers === undefined) {
      state.layers = G.state ? G.state.layers : [];
    } else {
      drawCaseLayers(state.layers);
    }
    G.state = state;
    G.overlay.clearLayers();
    G.turnMarkers = {};
    var bounds = [];
    var path = [];
    (state.turns || []).forEach(function (t) {
      var n = num(t.index), ll = [num(t.lat), num(t.lon)];
      var icon = L.divIcon({className: "", iconSize: [24, 24], iconAnchor: [12, 12],
        html: '<div class="gd-turn' + (t.valid ? "" : " gd-invalid") + (t.flagged ? " gd-flagged" : "") +
          '">' + n + "</div>"});
      var title = "turn " + n + (t.flagged ? ": contradicts accepted clues" : "");
      var m = L.marker(ll, {icon: icon, title: title, zIndexOffset: 1000 + n})
        .bindPopup(t.label_html + (t.flagged ? '<div class="gd-flag-popup">' + t.flags_html + "</div>" : ""),
                   {maxWidth: 360}).addTo(G.overlay);
      m.on("click", function () { G.selectTurn(n, true); if (G.bridge) { G.bridge.turnClicked(n); } });
      G.turnMarkers[n] = m;
      path.push(ll); bounds.push(ll);
    });
    G.path = path.length > 1 ? L.polyline(path, {color: "#1f5fbf", weight: 2, dashArray: "6 4"})
      .addTo(G.overlay) : null;
    G.exifMarker = null;
    if (state.exif) {
      var e = [num(state.exif.lat), num(state.exif.lon)];
      G.exifMarker = L.marker(e, {icon: L.divIcon({className: "", iconAnchor: [10, 8],
        html: '<div class="gd-exif">EXIF</div>'})}).bindPopup(state.exif.label_html).addTo(G.overlay);
      bounds.push(e);
    }
    G.findingLayer = null;
    if (state.finding) {
      var f = [num(state.finding.lat), num(state.finding.lon)];
      G.findingLayer = L.layerGroup([
        L.circle(f, {radius: num(state.finding.radius_km) * 1000, color: "#c2255c", weight: 2,
                     fillOpacity: 0.08, interactive: false}),
        L.circleMarker(f, {radius: 7, color: "#fff", weight: 2, fillColor: "#c2255c", fillOpacity: 1})
          .bindPopup(state.finding.label_html)
      ]).addTo(G.overlay);
      bounds.push(f);
    }
    var sel = state.selected_turn;
    if (sel === null || sel === undefined) {
      var ts = state.turns || [];
      sel = ts.length ? num(ts[ts.length - 1].index) : null;
    }
    G.selectTurn(sel, false);
    var total = Number(state.turn_count) || 0;
    G.infoDiv.textContent = total ? (total + " turn" + (total === 1 ? "" : "s") + ", " + path.length +
      " with a point on the map") : "no session turns yet";
    if (fit) {
      if (bounds.length > 1) { G.map.fitBounds(bounds, {padding: [40, 40], maxZoom: 8}); }
      else if (bounds.length === 1) { G.map.setView(bounds[0], 6); }
    }
  };

  // The accepted clues' combined constraint: countries by verdict, sun bands and places (escaped text).
  G.setConstraint = function (doc) {
    G.constraint = doc;
    G.constraintLayer.clearLayers();
    G.constraintCounts = {country: 0, supported: 0, contested: 0, ruled_out: 0, area: 0};
    if (!doc) { return; }
    L.geoJSON({type: "FeatureCollection", features: doc.features || []}, {
      style: function (f) {
        var p = f.properties || {};
        var colour = /^#[0-9a-fA-F]{6}$/.test(p.colour) ? p.colour : "#888888";
        return {color: colour, weight: p.status === "area" ? 1.5 : 1, fillColor: colour,
                opacity: Math.max(0.3, Math.min(1, 2 * num(p.opacity))), fillOpacity: num(p.opacity),
                dashArray: p.status === "ruled_out" ? "3 3" : null};
      },
      pointToLayer: function (f, ll) {
        return L.circleMarker(ll, {radius: 6, color: "#fff", weight: 1.5, fillColor: "#f59f00",
                                   fillOpacity: 1});
      },
      onEachFeature: function (f, layer) {
        var p = f.properties || {};
        if (p.kind === "country") { G.constraintCounts.country += 1; }
        if (G.constraintCounts[p.status] !== undefined) { G.constraintCounts[p.status] += 1; }
        layer.bindPopup('<div class="gd-constraint-popup">' + (p.label_html || "") + "</div>",
                        {maxWidth: 360});
      }
    }).addTo(G.constraintLayer);
  };

  G.selectTurn = function (n, pan) {
    G.candidateLayer.clearLayers();
    Object.keys(G.turnMarkers).forEach(function (k) {
      var el = G.turnMarkers[k].getElement();
      if (el && el.firstChild) { el.firstChild.classList.remove("gd-selected"); }
    });
    G.selected = (n === null || n === undefined || !G.turnMarkers[n]) ? null : num(n);
    if (G.selected === null) { return; }
    var marker = G.turnMarkers[G.selected];
    var el = marker.getElement();
    if (el && el.firstChild) { el.firstChild.classList.add("gd-selected"); }
    var turn = (G.state.turns || []).filter(function (t) { return num(t.index) === G.selected; })[0];
    (turn.candidates || []).forEach(function (c) {
      var ll = [num(c.lat), num(c.lon)];
      L.circle(ll, {radius: Math.max(num(c.spread_km), 1) * 1000, color: "#7048e8", weight: 1,
                    fillOpacity: 0.05 + 0.25 * num(c.share), interactive: false}).addTo(G.candidateLayer);
      L.circleMarker(ll, {radius: 4, color: "#7048e8", fillOpacity: 1}).bindTooltip(c.label_html)
        .addTo(G.candidateLayer);
    });
    if (pan) { G.map.panTo(marker.getLatLng()); marker.openPopup(); }
  };

  G.summary = function () {
    var s = G.state || {};
    return {turnMarkers: Object.keys(G.turnMarkers).map(Number),
            pathPoints: G.path ? G.path.getLatLngs().length : 0,
            exif: !!G.exifMarker, finding: s.finding || null,
            candidates: G.candidateLayer.getLayers().length / 2, selected: G.selected,
            turnCount: Number(s.turn_count) || 0, bridge: !!G.bridge,
            flaggedTurns: (s.turns || []).filter(function (t) { return t.flagged; })
              .map(function (t) { return num(t.index); }),
            basemap: !!G.basemap, layers: G.layerControl ? G.layerControl._layers.length : 0,
            constraint: G.constraint ? {title: G.constraint.title_html, counts: G.constraintCounts} : null,
            tiles: {requests: G.tiles.requests, bytes: G.tiles.bytes, loaded: G.tiles.loaded,
                    labelTiles: G.tiles.labelTiles, errors: G.tiles.errors, mode: G.tiles.mode,
                    header: G.tiles.header, error: G.tiles.error},
            tilesets: (G.tilesets || []).map(function (t) { return t.stats; }),
            caseLayers: Object.keys(G.caseLayers || {}).map(function (k) {
              var c = G.caseLayers[k];
              return {id: k, features: c.features, visible: c.visible,
                      shown: G.caseLayerGroup.hasLayer(c.layer)};
            })};
  };

  // Features of the basemap tile under a point at a zoom, by layer: what the tests check was drawn.
  G.probeBasemap = function (lat, lon, z) {
    if (!G.tiles.archive) { return Promise.resolve(null); }
    var n = Math.pow(2, z), x = Math.floor((lon + 180) / 360 * n);
    var r = lat * Math.PI / 180;
    var y = Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * n);
    return G.basemap.base.views.get("").getDisplayTile({z: z, x: x, y: y}).then(function (t) {
      var out = {};
      t.data.forEach(function (features, layer) {
        out[layer] = features.length;
        if (layer === "places") { out.placeNames = features.map(function (f) { return f.props.name; }); }
      });
      return out;
    });
  };
})();
"""
