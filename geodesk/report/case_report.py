"""The case report: what an analyst hands over, as one self-contained HTML document (and PDF from it).

The report reads committed data only (the caller opens the store; nothing here writes to it) and is
laid out in the order a reader checks a case: the cover (title, reference, time, geodesk version,
the audit chain's head and what ``case verify`` said at report time), a summary table, one section per
evidence item (image with its accepted clue regions, clues, the session timeline, the finding with its
history, an overview and a detail map), then an appendix (methods, the audit extract of the reported
items). Every string that came from an image, its metadata, a model or the analyst passes through
Jinja's autoescaping; images and maps are inlined (data: URIs, inline SVG), so the file opens with no
script and references nothing outside itself.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from geodesk import __version__
from geodesk.domain.model import (
    CAVEAT_TEXT,
    Clue,
    ClueStatus,
    Evidence,
    Finding,
    GroundTruth,
    Prediction,
    Session,
    Turn,
)
from geodesk.geo.distance import haversine_km
from geodesk.report.history import describe_hint, describe_prediction, flags_by_turn, km_moved
from geodesk.report.maps import MapPoint, detail_view, map_figure, overview_view, world_symbol
from geodesk.store.case_store import CaseStore

TEMPLATES = Path(__file__).resolve().parents[2] / "resources" / "report"
# Longest side of the evidence image drawn in the report, and of the summary thumbnail.
IMAGE_SIDE = 800
THUMB_SIDE = 160
# Pixels decoded at most for a report image: hostile files are refused, not expanded in memory.
MAX_DECODE_PIXELS = 80_000_000
REDACTED = "[path removed]"


@dataclass(frozen=True, slots=True)
class ReportOptions:
    evidence: tuple[str, ...] = ()  # SHA-256 or unique prefixes; empty: every item
    include_rejected: bool = False
    redact_paths: bool = False
    reference: str = ""


def _km(a_lat: float | None, a_lon: float | None, b_lat: float | None, b_lon: float | None) -> float | None:
    if None in (a_lat, a_lon, b_lat, b_lon):
        return None
    return haversine_km(a_lat, a_lon, b_lat, b_lon)  # type: ignore[arg-type]


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def render_image(path: Path, side: int, boxes: list[tuple[tuple[int, int, int, int], str]],
                 thumb_side: int | None = None) -> tuple[str, str | None]:
    """The image scaled to ``side`` with boxes drawn, as a JPEG data URI, and its thumbnail when asked.

    One decode serves both: JPEGs decode at a reduced scale (``draft``), the thumbnail is cut from the
    scaled image, and the EXIF orientation is applied only when the file has one. Boxes are in
    original-pixel coordinates with the orientation applied (as regions are stored).
    """
    from PIL import Image, ImageDraw, ImageOps

    with Image.open(path) as image:
        if image.width * image.height > MAX_DECODE_PIXELS:
            raise ValueError(f"{image.width}×{image.height} pixels is more than a report draws")
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):  # rotated by 90°: the oriented frame swaps
            width, height = height, width
        image.draft("RGB", (side, side))
        rgb = (ImageOps.exif_transpose(image) if orientation != 1 else image).convert("RGB")
    rgb.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    thumb = None
    if thumb_side is not None:
        small = rgb.copy()
        small.thumbnail((thumb_side, thumb_side), Image.Resampling.BILINEAR)
        thumb = _jpeg_uri(small)
    sx, sy = rgb.width / width, rgb.height / height
    draw = ImageDraw.Draw(rgb)
    for (x0, y0, x1, y1), label in boxes:
        rect = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
        draw.rectangle(rect, outline=(255, 212, 59), width=3)
        draw.text((rect[0] + 3, rect[1] + 2), label[:40], fill=(255, 212, 59))
    return _jpeg_uri(rgb), thumb


def _jpeg_uri(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return _data_uri(buffer.getvalue())


def _render_all(jobs: list[tuple[Path, list[tuple[tuple[int, int, int, int], str]]]]
                ) -> list[tuple[str | None, str | None, str | None]]:
    """(image, thumbnail, error) per job, decoded in parallel (Pillow releases the GIL while decoding)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(job: tuple[Path, list[tuple[tuple[int, int, int, int], str]]]) -> tuple[str | None, str | None,
                                                                                    str | None]:
        try:
            image, thumb = render_image(job[0], IMAGE_SIDE, job[1], THUMB_SIDE)
        except (OSError, ValueError) as exc:
            return None, None, f"the image could not be drawn: {exc}"
        return image, thumb, None

    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geodesk-report") as pool:
        return list(pool.map(one, jobs))


def _prediction_row(p: Prediction) -> dict[str, Any]:
    return {"text": describe_prediction(p), "lat": p.lat, "lon": p.lon, "valid": p.valid,
            "reasoning": (p.reasoning or "").strip()}


def _finding_row(f: Finding) -> dict[str, Any]:
    return {"lat": f.lat, "lon": f.lon, "radius_km": f.radius_km, "status": f.status.value,
            "reasoning": f.reasoning, "version": f.version,
            "at": f.created_at.isoformat(timespec="seconds") if f.created_at else ""}


def _session_block(session: Session, turns: list[Turn], truth: GroundTruth | None,
                   against: dict[int, list[str]]) -> dict[str, Any]:
    """``against``: turn id -> the accepted clues its answer contradicts (report.history.flags_by_turn)."""
    moved = km_moved(turns)
    rows = []
    for turn, km in zip(turns, moved, strict=True):
        p = turn.prediction
        rows.append({
            "number": turn.number,
            "status": turn.status.value,
            "hints": [describe_hint(h) for h in turn.hints] or ["first turn"],
            "prediction": _prediction_row(p),
            "km_moved": km,
            "truth_km": None if truth is None else _km(p.lat, p.lon, truth.lat, truth.lon),
            "protocol": turn.protocol_version,
            "at": turn.created_at.isoformat(timespec="seconds") if turn.created_at else "",
            "error": turn.error,
            "flags": against.get(turn.id, []) if turn.id is not None else [],
        })
    return {
        "id": session.id,
        "mode": session.mode.value,
        "model": {"name": session.model.name, "version": session.model.version,
                  "sha256": session.model.sha256},
        "caveat": CAVEAT_TEXT.get(session.model.caveat or ""),
        "backend": session.backend,
        "seed": session.decoding.get("seed"),
        "temperature": session.decoding.get("temperature"),
        "replay_of": session.replay_of,
        "turns": rows,
    }


def _clue_row(c: Clue) -> dict[str, Any]:
    return {"id": c.id, "category": c.category, "text": c.text, "source": c.source.value,
            "status": c.status.value, "region": c.region.as_list() if c.region else None,
            "confidence": getattr(c, "confidence", None)}


def _select_evidence(store: CaseStore, refs: tuple[str, ...]) -> list[Evidence]:
    if not refs:
        return store.evidence.list()
    chosen: dict[str, Evidence] = {}
    for ref in refs:
        e = store.evidence.get(ref)  # LookupError names the prefix that matched nothing or several
        chosen[e.sha256] = e
    return [e for e in store.evidence.list() if e.sha256 in chosen]


def collect_report(store: CaseStore, options: ReportOptions, verify_problems: list[str],
                   generated_at: datetime, borders: dict[str, Any] | None) -> dict[str, Any]:
    """Everything the report shows, as plain data for the template (strings unescaped)."""
    case = store.case
    head = store.audit.head()
    items = _select_evidence(store, options.evidence)
    shas = {e.sha256 for e in items}
    truths = store.truth.all()
    sessions_of: dict[str, list[Session]] = {}
    for s in store.sessions.list():
        if s.evidence_sha256 in shas:
            sessions_of.setdefault(s.evidence_sha256, []).append(s)
    caveats: set[str] = set()
    jobs: list[tuple[Path, list[tuple[tuple[int, int, int, int], str]]]] = []
    sections = []
    summary = []
    subjects: set[str] = {f"evidence:{sha}" for sha in shas}
    for e in items:
        truth = truths.get(e.sha256)
        finding = store.findings.current(e.sha256)
        history = store.findings.history(e.sha256)
        clues = [c for c in store.clues.list(e.sha256)
                 if c.status in (ClueStatus.ACCEPTED, ClueStatus.EDITED)
                 or (options.include_rejected and c.status is ClueStatus.REJECTED)]
        subjects.update(f"clue:{c.id}" for c in store.clues.list(e.sha256))
        item_flags = store.turn_flags.list(evidence_sha256=e.sha256)
        against = flags_by_turn(item_flags)
        subjects.update(f"flag:{f.id}" for f in item_flags if f.counts)
        blocks = []
        last_prediction: Prediction | None = None
        points: list[MapPoint] = []
        for s in sessions_of.get(e.sha256, []):
            turns = store.turns.list(s.id or 0)
            subjects.add(f"session:{s.id}")
            subjects.update(f"turn:{t.id}" for t in turns)
            blocks.append(_session_block(s, turns, truth, against))
            if s.model.caveat:
                caveats.add(s.model.caveat)
            for t in turns:
                p = t.prediction
                if p.lat is not None and p.lon is not None and -90 <= p.lat <= 90 and -180 <= p.lon <= 180:
                    points.append(MapPoint("turn", p.lat, p.lon,
                                           f"Turn {t.number}: session {s.id}: {describe_prediction(p)}"))
                    last_prediction = p
        if e.gps is not None:
            points.append(MapPoint("exif", e.gps.lat, e.gps.lon,
                                   f"EXIF GPS {e.gps.lat:.5f}, {e.gps.lon:.5f}"))
        if finding is not None:
            points.append(MapPoint("finding", finding.lat, finding.lon,
                                   f"Finding ({finding.status.value}, ±{finding.radius_km:g} km)",
                                   radius_km=finding.radius_km))
        if truth is not None:
            points.append(MapPoint("truth", truth.lat, truth.lon,
                                   f"True place of this synthetic scene: {truth.city or ''}, "
                                   f"{truth.country or ''}"))
        focus = next((p for p in points if p.kind == "finding"), None) or next(
            (p for p in points if p.kind == "exif"), None) or next(
            (p for p in reversed(points) if p.kind == "turn"), None)
        maps = [map_figure(overview_view(points), points, title=f"Overview: {e.original_name}")]
        detail = detail_view(points, focus)
        if detail is not None:
            maps.append(map_figure(detail, points, title=f"Detail: {e.original_name}", width_px=480))
        boxes = [((c.region.x0, c.region.y0, c.region.x1, c.region.y1), c.category)
                 for c in clues if c.region is not None and c.status is not ClueStatus.REJECTED]
        try:
            jobs.append((store.evidence_file(e.sha256), boxes))
        except LookupError as exc:
            jobs.append((Path(f"missing: {exc}"), boxes))
        finding_row = None if finding is None else _finding_row(finding)
        last_row = None if last_prediction is None else _prediction_row(last_prediction)
        between = None
        if finding is not None and last_prediction is not None:
            between = _km(finding.lat, finding.lon, last_prediction.lat, last_prediction.lon)
        place = None
        if e.place is not None:
            place = ", ".join(n for n in (e.place.city, e.place.region, e.place.country) if n)
        row = {
            "sha256": e.sha256, "name": e.original_name, "thumb": None,
            "taken_at": e.taken_at, "camera": e.camera,
            "exif": None if e.gps is None else {"lat": e.gps.lat, "lon": e.gps.lon, "place": place},
            "finding": finding_row, "last_prediction": last_row, "finding_to_prediction_km": between,
            "source_path": None if e.source_path is None else (REDACTED if options.redact_paths
                                                                  else e.source_path),
            "size_bytes": e.size_bytes, "format": e.format, "width": e.width, "height": e.height,
            "caveats": sorted({CAVEAT_TEXT[s.model.caveat] for s in sessions_of.get(e.sha256, [])
                               if s.model.caveat in CAVEAT_TEXT}),
            "truth": None if truth is None else {"city": truth.city, "country": truth.country,
                                                 "lat": truth.lat, "lon": truth.lon},
        }
        summary.append(row)
        sections.append({**row, "image": None, "image_error": None,
                         "clues": [_clue_row(c) for c in clues], "sessions": blocks,
                         "finding_history": [_finding_row(f) for f in history], "maps": maps})
    for row, section, (image, thumb, error) in zip(summary, sections, _render_all(jobs), strict=True):
        row["thumb"] = section["thumb"] = thumb
        section["image"], section["image_error"] = image, error
    audit = [
        {"seq": a.seq, "at": a.at, "action": a.action, "subject": a.subject, "hash": a.hash,
         "details": _redact(a.details) if options.redact_paths else a.details}
        for a in store.audit.entries()
        if a.subject in subjects or (a.subject.startswith("finding:") and a.subject[8:] in shas)
        or a.details.get("evidence") in shas
    ]
    return {
        "case": {"id": case.id, "title": case.title,
                 "path": REDACTED if options.redact_paths else case.path},
        "reference": options.reference,
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "geodesk_version": __version__,
        "chain_head": None if head is None else {"seq": head.seq, "hash": head.hash, "at": head.at},
        "verify": {"intact": not verify_problems, "problems": verify_problems},
        "summary": summary,
        "sections": sections,
        "caveats": [CAVEAT_TEXT[c] for c in sorted(caveats)],
        "audit": audit,
        "include_rejected": options.include_rejected,
        "redacted": options.redact_paths,
        "world_symbol": world_symbol(borders),
    }


_PATH_KEYS = ("source_path", "path", "source", "out", "archive")


def _redact(details: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if k in _PATH_KEYS and isinstance(v, str) else v) for k, v in details.items()}


def render_html(data: dict[str, Any]) -> str:
    """The report as one HTML document; autoescaping covers every value (the SVG parts are built here)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["km"] = lambda v: "–" if v is None else (f"{v:.1f} km" if v < 100 else f"{v:,.0f} km")
    env.filters["coord"] = lambda v: "–" if v is None else f"{v:.5f}"
    # The SVG maps and the world symbol are generated by geodesk.report.maps, which escapes every label.
    trusted = {
        "world_symbol": Markup(data["world_symbol"]),
        "sections": [{**s, "maps": [Markup(m) for m in s["maps"]]} for s in data["sections"]],
    }
    return env.get_template("case_report.html.j2").render(**{**data, **trusted})
