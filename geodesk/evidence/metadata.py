"""EXIF and XMP metadata of an evidence image: GPS, capture time, camera, orientation, pixel size.

Everything is read from Pillow's lazily opened image (headers only, no pixel decoding). Values from
cameras are messy: rationals with zero denominators, references as bytes or with trailing NULs,
"0000:00:00" dates, XMP-only fields. Each reader returns ``None`` for what it cannot trust and
appends a sentence to ``notes`` saying why, so the analyst sees what was dropped and why.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from PIL import ExifTags, Image, TiffImagePlugin

from geodesk.domain.model import GpsPoint

# EXIF tag numbers used here (CIPA DC-008).
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_ORIENTATION = 0x0112
TAG_DATETIME = 0x0132
TAG_XMP = 0x02BC  # TIFF XMLPacket
IFD_EXIF = 0x8769
IFD_GPS = 0x8825
IFD_INTEROP = 0xA005
TAG_DATETIME_ORIGINAL = 0x9003
TAG_DATETIME_DIGITIZED = 0x9004
TAG_OFFSET_TIME_ORIGINAL = 0x9011
TAG_OFFSET_TIME_DIGITIZED = 0x9012
TAG_SUBSEC_ORIGINAL = 0x9291
TAG_MAKER_NOTE = 0x927C
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_ALT_REF, GPS_ALT = 1, 2, 3, 4, 5, 6
GPS_TIMESTAMP, GPS_STATUS, GPS_DATESTAMP = 7, 9, 29

# Tags that are file-structure plumbing, not information about the picture.
_SKIP_TAGS = {IFD_EXIF, IFD_GPS, IFD_INTEROP, 0x014A, 0x0111, 0x0117, 0x0144, 0x0145, 0x0201, 0x0202,
              TAG_XMP, TAG_MAKER_NOTE, 0x8773}
_MAX_TEXT = 2000
_MAX_LIST = 64
_MAX_XMP_BYTES = 1 << 20

XMP_NAMESPACES = {
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://cipa.jp/exif/1.0/": "exifEX",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
}
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

# Orientations 5..8 turn the picture by 90°: width and height swap once it is displayed upright.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}


@dataclass(frozen=True, slots=True)
class ImageMetadata:
    """What one image's headers say. ``width``/``height`` are as displayed (orientation applied)."""

    format: str
    width: int
    height: int
    orientation: int = 1
    gps: GpsPoint | None = None
    taken_at: str | None = None
    taken_at_has_offset: bool = False
    taken_at_source: str | None = None
    make: str | None = None
    model: str | None = None
    camera: str | None = None
    exif: dict[str, dict[str, Any]] = field(default_factory=dict)
    xmp: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The JSON-safe record stored in ``Evidence.metadata``."""
        return {
            "make": self.make,
            "model": self.model,
            "taken_at_has_offset": self.taken_at_has_offset,
            "taken_at_source": self.taken_at_source,
            "exif": self.exif,
            "xmp": self.xmp,
            "notes": list(self.notes),
        }


# --- values -----------------------------------------------------------------------------------------


def clean_text(value: Any) -> str | None:
    """A trimmed string from EXIF ASCII/UNDEFINED data (NUL padding removed), or None when empty."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).replace("\x00", " ").strip()
    return text or None


def rational_value(value: Any) -> float | None:
    """A float from an EXIF rational (Pillow ``IFDRational``, ``(num, den)`` or a number).

    A zero denominator means "unknown" in practice (cameras write 0/0 for unset fields): None.
    """
    if isinstance(value, TiffImagePlugin.IFDRational):
        if value.denominator == 0:
            return None
        return float(value.numerator) / float(value.denominator)
    if isinstance(value, tuple) and len(value) == 2:
        num, den = value
        if not den:
            return None
        return float(num) / float(den)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
        return result if math.isfinite(result) else None
    return None


def dms_to_degrees(values: Any, name: str, notes: list[str]) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals; None when they cannot be trusted.

    A zero-denominator degree means the position is unknown. Zero-denominator minutes or seconds
    (0/0 written by some phones for "none") count as 0, with a note.
    """
    if isinstance(values, (TiffImagePlugin.IFDRational, int, float)):
        values = (values,)
    if not isinstance(values, (tuple, list)) or not 1 <= len(values) <= 3:
        notes.append(f"{name} is not a (degrees, minutes, seconds) triple; ignored")
        return None
    parts = [rational_value(v) for v in values]
    if parts[0] is None:
        notes.append(f"{name} has an unreadable degrees value (zero denominator); ignored")
        return None
    if any(p is None for p in parts[1:]):
        notes.append(f"{name} has minutes or seconds with a zero denominator; counted as 0")
    degrees, minutes, seconds = (*(p or 0.0 for p in parts), 0.0, 0.0)[:3]
    if minutes < 0 or seconds < 0 or minutes >= 60 or seconds >= 60:
        # Out-of-range minutes/seconds are a writer bug, but the sum is still the intended angle.
        notes.append(f"{name} has minutes or seconds outside 0..60; used as written")
    return abs(degrees) + abs(minutes) / 60.0 + abs(seconds) / 3600.0


def apply_ref(value: float, ref: Any, negative: str, name: str, notes: list[str]) -> float:
    """Sign ``value`` by its hemisphere reference (N/S, E/W); missing refs keep the written sign."""
    text = clean_text(ref)
    if text is None:
        notes.append(f"{name} has no hemisphere reference; taken as written")
        return value
    letter = text[0].upper()
    if letter == negative:
        return -abs(value)
    if letter in "NE":
        return abs(value)
    notes.append(f"{name} has an unknown hemisphere reference {text!r}; taken as written")
    return value


def gps_from_exif(gps: Mapping[int, Any], notes: list[str]) -> GpsPoint | None:
    """Signed decimal degrees (and altitude in metres, negative below sea level) from a GPS IFD."""
    if GPS_LAT not in gps or GPS_LON not in gps:
        return None
    if clean_text(gps.get(GPS_STATUS)) == "V":
        notes.append("GPS status is 'V' (measurement void); the recorded position is ignored")
        return None
    lat = dms_to_degrees(gps[GPS_LAT], "GPSLatitude", notes)
    lon = dms_to_degrees(gps[GPS_LON], "GPSLongitude", notes)
    if lat is None or lon is None:
        return None
    lat = apply_ref(lat, gps.get(GPS_LAT_REF), "S", "GPSLatitude", notes)
    lon = apply_ref(lon, gps.get(GPS_LON_REF), "W", "GPSLongitude", notes)
    alt = None
    if GPS_ALT in gps:
        alt = rational_value(gps[GPS_ALT])
        if alt is None:
            notes.append("GPSAltitude is unreadable (zero denominator); ignored")
        elif _altitude_below_sea(gps.get(GPS_ALT_REF)):
            alt = -abs(alt)
    return _point(lat, lon, alt, "EXIF GPS", notes)


def _altitude_below_sea(ref: Any) -> bool:
    """GPSAltitudeRef is BYTE 1 for "below sea level"; Pillow gives it as bytes, int or text."""
    if isinstance(ref, bytes):
        return ref[:1] == b"\x01" or ref.strip(b"\x00 ") == b"1"
    if isinstance(ref, (tuple, list)) and ref:
        return _altitude_below_sea(ref[0])
    if isinstance(ref, str):
        return ref.strip("\x00 ") == "1"
    return bool(ref == 1)


def _point(lat: float, lon: float, alt: float | None, source: str, notes: list[str]) -> GpsPoint | None:
    try:
        return GpsPoint(lat, lon, alt)
    except ValueError as exc:
        notes.append(f"{source} position is invalid ({exc}); ignored")
        return None


_NUMBER = r"(\d+(?:\.\d+)?)"
_XMP_COORD = re.compile(rf"^\s*{_NUMBER}\s*,\s*{_NUMBER}(?:\s*,\s*{_NUMBER})?\s*([NSEWnsew])\s*$")


def parse_xmp_coordinate(text: str, name: str, notes: list[str]) -> float | None:
    """XMP GPSCoordinate ("DDD,MM,SSk" or "DDD,MM.mmk", k = N/S/E/W) or a plain decimal, signed."""
    match = _XMP_COORD.match(text)
    if match:
        degrees, minutes, seconds, ref = match.groups()
        value = float(degrees) + float(minutes) / 60.0 + float(seconds or 0) / 3600.0
        return -value if ref.upper() in "SW" else value
    try:
        value = float(text)
    except ValueError:
        notes.append(f"XMP {name} {text!r} is not a coordinate; ignored")
        return None
    return value if math.isfinite(value) else None


def gps_from_xmp(xmp: Mapping[str, str], notes: list[str]) -> GpsPoint | None:
    lat_text, lon_text = xmp.get("exif:GPSLatitude"), xmp.get("exif:GPSLongitude")
    if not lat_text or not lon_text:
        return None
    lat = parse_xmp_coordinate(lat_text, "GPSLatitude", notes)
    lon = parse_xmp_coordinate(lon_text, "GPSLongitude", notes)
    if lat is None or lon is None:
        return None
    alt = None
    if alt_text := xmp.get("exif:GPSAltitude"):
        num, _, den = alt_text.partition("/")
        try:
            alt = float(num) / float(den) if den else float(num)
        except (ValueError, ZeroDivisionError):
            notes.append(f"XMP GPSAltitude {alt_text!r} is unreadable; ignored")
            alt = None
        if alt is not None and not math.isfinite(alt):  # "nan", "inf", 1e999: no altitude, the point stays
            notes.append(f"XMP GPSAltitude {alt_text!r} is not a finite number; ignored")
            alt = None
        if alt is not None and xmp.get("exif:GPSAltitudeRef", "0").strip() == "1":
            alt = -abs(alt)
    return _point(lat, lon, alt, "XMP GPS", notes)


# --- capture time -----------------------------------------------------------------------------------

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def parse_exif_datetime(
    value: Any, offset: Any, subsec: Any, name: str, notes: list[str]
) -> tuple[str, bool] | None:
    """ISO 8601 from EXIF "YYYY:MM:DD HH:MM:SS" (+ sub-seconds, + "±HH:MM" offset) and whether it has one."""
    text = clean_text(value)
    if text is None:
        return None
    try:
        moment = datetime.strptime(text[:19].replace("-", ":").replace("T", " "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        notes.append(f"{name} {text!r} is not a valid date and time; ignored")
        return None
    digits = "".join(ch for ch in (clean_text(subsec) or "") if ch.isdigit())[:6]
    if digits:
        moment = moment.replace(microsecond=int(digits.ljust(6, "0")))
    iso = moment.isoformat()
    offset_text = clean_text(offset)
    if offset_text:
        match = _OFFSET.match(offset_text)
        if match and int(match.group(2)) <= 14 and int(match.group(3)) < 60:
            return f"{iso}{match.group(1)}{match.group(2)}:{match.group(3)}", True
        notes.append(f"the UTC offset {offset_text!r} of {name} is not ±HH:MM; ignored")
    return iso, False


def parse_xmp_datetime(text: str, name: str, notes: list[str]) -> tuple[str, bool] | None:
    """ISO 8601 from an XMP date ("2020-01-02T03:04:05+05:30", "...Z", date-only forms)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        notes.append(f"XMP {name} {text!r} is not an ISO 8601 date; ignored")
        return None
    return moment.isoformat(), moment.tzinfo is not None


# --- camera -----------------------------------------------------------------------------------------


def camera_name(make: str | None, model: str | None) -> str | None:
    """"Make Model", without repeating the make ("Canon" + "Canon EOS 5D" -> "Canon EOS 5D";
    "NIKON CORPORATION" + "NIKON D750" -> "NIKON D750")."""
    if not model:
        return make
    if not make:
        return model
    first_word = make.split()[0].lower()
    if model.lower().startswith(make.lower()) or model.lower().split()[0] == first_word:
        return model
    return f"{make} {model}"


# --- XMP --------------------------------------------------------------------------------------------


def xmp_packet(image: Image.Image) -> bytes | None:
    """The raw XMP packet Pillow found (JPEG APP1, PNG iTXt, WebP chunk, TIFF tag 700)."""
    for key in ("xmp", "XML:com.adobe.xmp"):
        value = image.info.get(key)
        if value:
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    tags = getattr(image, "tag_v2", None)
    if tags is not None and TAG_XMP in tags:
        value = tags[TAG_XMP]
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return None


def parse_xmp(packet: bytes, notes: list[str]) -> dict[str, str]:
    """Simple properties of known namespaces as {"prefix:Name": text}; arrays joined with "; "."""
    if len(packet) > _MAX_XMP_BYTES:
        notes.append(f"the XMP packet is {len(packet):,} bytes, too large to read; ignored")
        return {}
    start = packet.find(b"<x:xmpmeta")
    if start < 0:
        start = packet.find(b"<rdf:RDF")
    end_tag = b"</x:xmpmeta>" if packet[start : start + 10] == b"<x:xmpmeta" else b"</rdf:RDF>"
    end = packet.find(end_tag, max(start, 0))
    if start < 0 or end < 0:
        notes.append("the XMP packet has no xmpmeta/RDF element; ignored")
        return {}
    try:
        # expat (Python >= 3.11 bundles >= 2.4) refuses entity-expansion bombs; no external entities.
        root = ET.fromstring(packet[start : end + len(end_tag)])
    except ET.ParseError as exc:
        notes.append(f"the XMP packet is not well-formed XML ({exc}); ignored")
        return {}
    props: dict[str, str] = {}
    for description in root.iter(f"{{{_RDF}}}Description"):
        for key, value in description.attrib.items():
            if name := _xmp_name(key):
                props[name] = value.strip()
        for child in description:
            name = _xmp_name(child.tag)
            if name is None:
                continue
            items = [li.text.strip() for li in child.iter(f"{{{_RDF}}}li") if li.text and li.text.strip()]
            if items:
                props[name] = "; ".join(items)
            elif child.text and child.text.strip() and len(child) == 0:
                props[name] = child.text.strip()
    return {k: v[:_MAX_TEXT] for k, v in props.items()}


def _xmp_name(qualified: str) -> str | None:
    if not qualified.startswith("{"):
        return None
    uri, _, local = qualified[1:].partition("}")
    prefix = XMP_NAMESPACES.get(uri)
    return f"{prefix}:{local}" if prefix else None


# --- EXIF dump --------------------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """EXIF values as JSON-safe data: rationals as floats, short binary as hex, long as a size."""
    if isinstance(value, TiffImagePlugin.IFDRational):
        return rational_value(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return (clean_text(value) or "")[:_MAX_TEXT]
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        stripped = value.rstrip(b"\x00")
        if stripped and all(32 <= b < 127 for b in stripped):
            return stripped.decode("ascii")[:_MAX_TEXT]
        return stripped.hex() if len(stripped) <= 64 else f"<{len(value)} bytes>"
    if isinstance(value, (tuple, list)):
        if len(value) > _MAX_LIST:
            return f"<{len(value)} values>"
        return [json_value(v) for v in value]
    return str(value)[:_MAX_TEXT]


def exif_dump(ifds: Mapping[str, Mapping[int, Any]]) -> dict[str, dict[str, Any]]:
    """{"IFD0": {...}, "Exif": {...}, "GPS": {...}} keyed by tag names (hex for unknown tags)."""
    out: dict[str, dict[str, Any]] = {}
    for group, tags in ifds.items():
        names = ExifTags.GPSTAGS if group == "GPS" else ExifTags.TAGS
        entries = {
            names.get(tag, f"0x{tag:04X}"): json_value(value)
            for tag, value in sorted(tags.items())
            if tag not in _SKIP_TAGS
        }
        if entries:
            out[group] = entries
    return out


# --- everything -------------------------------------------------------------------------------------


def read_metadata(image: Image.Image) -> ImageMetadata:
    """All metadata of a lazily opened image (no pixels are decoded)."""
    notes: list[str] = []
    try:
        # PngImageFile.getexif decodes the whole picture to look for an eXIf chunk after the pixel data
        # (a 328 KB PNG can decode to gigabytes, and a damaged one would be blamed on its EXIF): a PNG
        # whose header holds no EXIF has none here.
        exif = Image.Exif() if image.format == "PNG" and "exif" not in image.info else image.getexif()
        base: Mapping[int, Any] = dict(exif)
        exif_ifd: Mapping[int, Any] = exif.get_ifd(IFD_EXIF)
        gps_ifd: Mapping[int, Any] = exif.get_ifd(IFD_GPS)
    except Exception as exc:  # damaged EXIF must not cost the analyst the image itself
        notes.append(f"the EXIF block is damaged and was skipped ({type(exc).__name__}: {exc})")
        base, exif_ifd, gps_ifd = {}, {}, {}
    xmp: dict[str, str] = {}
    packet = xmp_packet(image)
    if packet:
        xmp = parse_xmp(packet, notes)

    gps = gps_from_exif(gps_ifd, notes)
    if gps is None:
        gps = gps_from_xmp(xmp, notes)

    taken_at, has_offset, source = _capture_time(exif_ifd, xmp, notes)
    make = clean_text(base.get(TAG_MAKE)) or xmp.get("tiff:Make")
    model = clean_text(base.get(TAG_MODEL)) or xmp.get("tiff:Model")
    orientation = _orientation(base.get(TAG_ORIENTATION, xmp.get("tiff:Orientation")), notes)

    width, height = image.size
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ImageMetadata(
        format=str(image.format),
        width=width,
        height=height,
        orientation=orientation,
        gps=gps,
        taken_at=taken_at,
        taken_at_has_offset=has_offset,
        taken_at_source=source,
        make=make,
        model=model,
        camera=camera_name(make, model),
        exif=exif_dump({"IFD0": base, "Exif": exif_ifd, "GPS": gps_ifd}),
        xmp=xmp,
        notes=tuple(notes),
    )


def _orientation(value: Any, notes: list[str]) -> int:
    if value is None:
        return 1
    try:
        orientation = int(value[0] if isinstance(value, (tuple, list)) else value)
    except (TypeError, ValueError):
        orientation = 0
    if not 1 <= orientation <= 8:
        notes.append(f"EXIF Orientation {value!r} is not 1..8; the image is shown as stored")
        return 1
    return orientation


def _capture_time(
    exif_ifd: Mapping[int, Any], xmp: Mapping[str, str], notes: list[str]
) -> tuple[str | None, bool, str | None]:
    """The capture time, in order of trust: EXIF DateTimeOriginal, XMP DateTimeOriginal / DateCreated,
    EXIF DateTimeDigitized, XMP CreateDate. A naive EXIF time borrows the offset of an XMP time with
    the same wall-clock reading (Lightroom and phones often write the offset only there)."""
    original = parse_exif_datetime(
        exif_ifd.get(TAG_DATETIME_ORIGINAL), exif_ifd.get(TAG_OFFSET_TIME_ORIGINAL),
        exif_ifd.get(TAG_SUBSEC_ORIGINAL), "DateTimeOriginal", notes,
    )
    candidates: list[tuple[tuple[str, bool] | None, str]] = [(original, "EXIF DateTimeOriginal")]
    for key, label in (("exif:DateTimeOriginal", "XMP exif:DateTimeOriginal"),
                       ("photoshop:DateCreated", "XMP photoshop:DateCreated")):
        if key in xmp:
            candidates.append((parse_xmp_datetime(xmp[key], key, notes), label))
    digitized = parse_exif_datetime(
        exif_ifd.get(TAG_DATETIME_DIGITIZED), exif_ifd.get(TAG_OFFSET_TIME_DIGITIZED), None,
        "DateTimeDigitized", notes,
    )
    candidates.append((digitized, "EXIF DateTimeDigitized"))
    if "xmp:CreateDate" in xmp:
        created = parse_xmp_datetime(xmp["xmp:CreateDate"], "xmp:CreateDate", notes)
        candidates.append((created, "XMP xmp:CreateDate"))

    found = [(value, label) for value, label in candidates if value is not None]
    if not found:
        return None, False, None
    (iso, has_offset), label = found[0]
    if not has_offset:
        for (other, other_has_offset), other_label in found[1:]:
            if other_has_offset and other[:19] == iso[:19]:
                notes.append(f"the UTC offset of the capture time comes from {other_label}")
                return _with_offset(iso, other), True, label
        notes.append(f"the capture time ({label}) has no UTC offset recorded: local time of an unknown zone")
    return iso, has_offset, label


def _with_offset(naive_iso: str, aware_iso: str) -> str:
    offset = datetime.fromisoformat(aware_iso).utcoffset()
    moment = datetime.fromisoformat(naive_iso)
    assert offset is not None  # callers pass an aware time
    return moment.replace(tzinfo=timezone(offset)).isoformat()


__all__ = [
    "ImageMetadata",
    "apply_ref",
    "camera_name",
    "dms_to_degrees",
    "gps_from_exif",
    "gps_from_xmp",
    "parse_exif_datetime",
    "parse_xmp",
    "parse_xmp_coordinate",
    "parse_xmp_datetime",
    "rational_value",
    "read_metadata",
]
