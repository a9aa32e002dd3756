"""EXIF/XMP reading: GPS in signed decimal degrees, capture time with offset, camera, orientation."""

from __future__ import annotations

import io
from pathlib import Path

import piexif
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin

from geodesk.evidence.metadata import (
    camera_name,
    dms_to_degrees,
    gps_from_exif,
    parse_exif_datetime,
    parse_xmp,
    parse_xmp_coordinate,
    rational_value,
    read_metadata,
)
from tests.evidence.fixtures import exif_bytes, gps_ifd, pattern, write_image, write_jpeg

XMP_TEMPLATE = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" {attrs}>'
    "<dc:subject><rdf:Bag><rdf:li>harbour</rdf:li><rdf:li>ferry</rdf:li></rdf:Bag></dc:subject>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
    '<?xpacket end="w"?>'
)


def _open(path: Path) -> Image.Image:
    return Image.open(path)


def _jpeg_bytes_with_xmp(attrs: str, **exif: object) -> Image.Image:
    buffer = io.BytesIO()
    params = {"exif": exif_bytes(**exif)} if exif else {}  # type: ignore[arg-type]
    pattern().save(buffer, "JPEG", xmp=XMP_TEMPLATE.format(attrs=attrs).encode(), **params)
    buffer.seek(0)
    return Image.open(buffer)


# --- GPS ----------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(min_value=-90, max_value=90, allow_nan=False),
    lon=st.floats(min_value=-180, max_value=180, allow_nan=False),
    alt=st.one_of(st.none(), st.floats(min_value=-430, max_value=9000, allow_nan=False)),
)
def test_gps_round_trip_through_piexif(lat: float, lon: float, alt: float | None) -> None:
    """decimal -> EXIF rationals written by piexif -> our reader -> the same point within 1e-6°."""
    buffer = io.BytesIO()
    pattern(8, 8).save(buffer, "JPEG", exif=exif_bytes(gps=gps_ifd(lat, lon, alt)))
    buffer.seek(0)
    meta = read_metadata(Image.open(buffer))
    assert meta.gps is not None
    assert meta.gps.lat == pytest.approx(lat, abs=1e-6)
    assert meta.gps.lon == pytest.approx(lon, abs=1e-6)
    if alt is None:
        assert meta.gps.alt is None
    else:
        assert meta.gps.alt == pytest.approx(alt, abs=0.006)  # altitude written in centimetres


def test_southern_western_hemispheres_and_below_sea_level(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "deadsea.jpg", gps=gps_ifd(-33.8688, -151.2093, -415.5))
    gps = read_metadata(_open(path)).gps
    assert gps is not None
    assert (round(gps.lat, 4), round(gps.lon, 4), gps.alt) == (-33.8688, -151.2093, -415.5)


def test_zero_denominator_degrees_means_no_position() -> None:
    notes: list[str] = []
    ifd = {1: "N", 2: (TiffImagePlugin.IFDRational(0, 0), 1.0, 2.0), 3: "E", 4: (10.0, 0.0, 0.0)}
    assert gps_from_exif(ifd, notes) is None
    assert any("zero denominator" in n for n in notes)


def test_zero_denominator_seconds_count_as_zero_with_a_note() -> None:
    notes: list[str] = []
    value = dms_to_degrees(((48, 1), (30, 1), (0, 0)), "GPSLatitude", notes)
    assert value == pytest.approx(48.5)
    assert notes and "counted as 0" in notes[0]


def test_rational_values() -> None:
    assert rational_value(TiffImagePlugin.IFDRational(3, 4)) == 0.75
    assert rational_value((1, 0)) is None
    assert rational_value((7, 2)) == 3.5
    assert rational_value(float("nan")) is None
    assert rational_value("x") is None


def test_void_gps_status_and_out_of_range_latitude_are_dropped() -> None:
    notes: list[str] = []
    assert gps_from_exif({1: "N", 2: (1.0, 0.0, 0.0), 3: "E", 4: (1.0, 0.0, 0.0), 9: "V"}, notes) is None
    assert gps_from_exif({1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (1.0, 0.0, 0.0)}, notes) is None
    assert any("void" in n for n in notes) and any("invalid" in n for n in notes)


def test_refs_as_bytes_with_nul_padding() -> None:
    gps = gps_from_exif(
        {1: b"S\x00", 2: (10.0, 30.0, 0.0), 3: b"W\x00", 4: (20.0, 15.0, 0.0), 5: b"\x01", 6: 12.0}, []
    )
    assert gps is not None and (gps.lat, gps.lon, gps.alt) == (-10.5, -20.25, -12.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("51,30.5N", 51.508333), ("0,7.5W", -0.125), ("33,52,12S", -33.87), ("-12.25", -12.25)],
)
def test_xmp_coordinates(text: str, expected: float) -> None:
    value = parse_xmp_coordinate(text, "GPSLatitude", [])
    assert value == pytest.approx(expected, abs=1e-6)


def test_xmp_gps_and_time_used_when_exif_lacks_them() -> None:
    image = _jpeg_bytes_with_xmp(
        'exif:GPSLatitude="51,30.5N" exif:GPSLongitude="0,7.5W" exif:GPSAltitude="355/10" '
        'exif:DateTimeOriginal="2021-06-03T18:20:00+01:00" tiff:Make="FUJIFILM" tiff:Model="X-T4"'
    )
    meta = read_metadata(image)
    assert meta.gps is not None
    assert (round(meta.gps.lat, 6), round(meta.gps.lon, 6), meta.gps.alt) == (51.508333, -0.125, 35.5)
    assert meta.taken_at == "2021-06-03T18:20:00+01:00" and meta.taken_at_has_offset
    assert meta.taken_at_source == "XMP exif:DateTimeOriginal"
    assert meta.camera == "FUJIFILM X-T4"
    assert meta.xmp["dc:subject"] == "harbour; ferry"


def test_exif_gps_wins_over_xmp() -> None:
    image = _jpeg_bytes_with_xmp('exif:GPSLatitude="1,0N" exif:GPSLongitude="1,0E"', gps=gps_ifd(40.0, 20.0))
    gps = read_metadata(image).gps
    assert gps is not None and (round(gps.lat, 6), round(gps.lon, 6)) == (40.0, 20.0)


def test_naive_exif_time_borrows_offset_from_matching_xmp_time() -> None:
    image = _jpeg_bytes_with_xmp(
        'exif:DateTimeOriginal="2022-01-02T03:04:05-05:00"', taken="2022:01:02 03:04:05"
    )
    meta = read_metadata(image)
    assert meta.taken_at == "2022-01-02T03:04:05-05:00"
    assert meta.taken_at_source == "EXIF DateTimeOriginal"
    assert any("offset" in n for n in meta.notes)


def test_damaged_xmp_is_noted_not_fatal() -> None:
    notes: list[str] = []
    assert parse_xmp(b"<x:xmpmeta><rdf:RDF><unclosed></x:xmpmeta>", notes) == {}
    assert notes and "XMP" in notes[0]


# --- time, camera, orientation -------------------------------------------------------------------------


def test_capture_time_with_offset(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", taken="2023:05:01 12:34:56", offset="+02:00")
    meta = read_metadata(_open(path))
    assert meta.taken_at == "2023-05-01T12:34:56+02:00"
    assert meta.taken_at_has_offset


def test_capture_time_without_offset_is_naive_and_says_so(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", taken="2023:05:01 12:34:56")
    meta = read_metadata(_open(path))
    assert meta.taken_at == "2023-05-01T12:34:56"
    assert not meta.taken_at_has_offset
    assert any("no UTC offset" in n for n in meta.notes)


@pytest.mark.parametrize("bad", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2023:13:45 99:00:00"])
def test_invalid_capture_times_are_dropped_with_a_note(bad: str) -> None:
    notes: list[str] = []
    assert parse_exif_datetime(bad, None, None, "DateTimeOriginal", notes) is None
    assert notes and "not a valid date" in notes[0]


def test_subseconds_and_bad_offsets() -> None:
    notes: list[str] = []
    assert parse_exif_datetime("2020:02:29 23:59:59", "+0530", "25", "T", notes) == (
        "2020-02-29T23:59:59.250000+05:30",
        True,
    )
    assert parse_exif_datetime("2020:02:29 23:59:59", "local", None, "T", notes) == (
        "2020-02-29T23:59:59",
        False,
    )
    assert any("not ±HH:MM" in n for n in notes)


@pytest.mark.parametrize(
    ("make", "model", "expected"),
    [
        ("Canon", "Canon EOS 5D", "Canon EOS 5D"),
        ("NIKON CORPORATION", "NIKON D750", "NIKON D750"),
        ("Apple", "iPhone 12", "Apple iPhone 12"),
        (None, "X-T4", "X-T4"),
        ("Apple", None, "Apple"),
        (None, None, None),
    ],
)
def test_camera_name(make: str | None, model: str | None, expected: str | None) -> None:
    assert camera_name(make, model) == expected


def test_make_and_model_trimmed(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", make="  Apple\x00\x00", model="iPhone 12 \x00")
    meta = read_metadata(_open(path))
    assert (meta.make, meta.model, meta.camera) == ("Apple", "iPhone 12", "Apple iPhone 12")


@pytest.mark.parametrize(
    ("orientation", "size"), [(1, (64, 48)), (3, (64, 48)), (6, (48, 64)), (8, (48, 64))]
)
def test_pixel_size_after_orientation(tmp_path: Path, orientation: int, size: tuple[int, int]) -> None:
    path = write_jpeg(tmp_path / "a.jpg", orientation=orientation)
    meta = read_metadata(_open(path))
    assert (meta.orientation, (meta.width, meta.height)) == (orientation, size)


def test_invalid_orientation_falls_back_to_1(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", orientation=9)
    meta = read_metadata(_open(path))
    assert meta.orientation == 1 and any("Orientation" in n for n in meta.notes)


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", "png"), ("TIFF", "tif"), ("WEBP", "webp")])
def test_other_formats_carry_exif(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = write_image(
        tmp_path / f"a.{suffix}",
        fmt,
        gps=gps_ifd(35.6762, 139.6503),
        taken="2020:01:01 00:00:00",
        offset="+09:00",
        make="SONY",
        model="ILCE-7M3",
    )
    meta = read_metadata(_open(path))
    assert meta.format == fmt
    assert meta.gps is not None and round(meta.gps.lat, 4) == 35.6762
    assert meta.taken_at == "2020-01-01T00:00:00+09:00"
    assert meta.camera == "SONY ILCE-7M3"


def test_exif_dump_is_json_safe(tmp_path: Path) -> None:
    import json

    path = write_jpeg(
        tmp_path / "a.jpg", gps={**gps_ifd(1.0, 2.0), piexif.GPSIFD.GPSAltitude: (0, 0)}, make="X"
    )
    meta = read_metadata(_open(path))
    json.dumps(meta.as_dict(), allow_nan=False)
    assert meta.exif["IFD0"]["Make"] == "X"
    assert meta.exif["GPS"]["GPSAltitude"] is None
