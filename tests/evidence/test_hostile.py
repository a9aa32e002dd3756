"""Hostile and damaged evidence: bounded decoding, damaged-but-readable files kept, exact sentences."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from geodesk.evidence.formats import EvidenceError, open_image
from geodesk.evidence.pipeline import (
    ImportOptions,
    ImportReport,
    _captured_diagnostics,
    collect_sources,
    run_import,
)
from geodesk.store import CaseStore, Workspace
from tests.evidence.fixtures import pattern, write_jpeg

XMP = (
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.5N" exif:GPSLongitude="2,17.4E" '
    'exif:GPSAltitude="{alt}"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CaseStore]:
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Hostile")
    with ws.open_case(case) as opened:
        yield opened


def run(store: CaseStore, paths: list[Path], **options: object) -> ImportReport:
    sources, errors = collect_sources(paths)
    assert errors == []
    return run_import(store, sources, options=ImportOptions(workers=0, **options))  # type: ignore[arg-type]


def deep_png(path: Path, width: int, height: int) -> Path:
    """A 16-bit greyscale PNG written row by row (never in memory): tiny on disk, huge once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x12\x34" * width
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(signature + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("alt", ["nan", "inf", "-inf", "1e999"])
def test_a_non_finite_xmp_altitude_is_dropped_with_a_note(tmp_path: Path, store: CaseStore, alt: str) -> None:
    path = tmp_path / "photo.jpg"
    pattern(200, 150).save(path, "JPEG", xmp=XMP.format(alt=alt).encode())
    report = run(store, [path])
    assert report.errors == []
    [evidence] = report.imported
    assert evidence.gps is not None and evidence.gps.alt is None and round(evidence.gps.lat, 3) == 48.858
    assert any("GPSAltitude" in n and "not a finite number" in n for n in evidence.metadata["notes"])


def test_a_truncated_jpeg_with_metadata_is_imported_and_flagged(tmp_path: Path, store: CaseStore) -> None:
    path = write_jpeg(tmp_path / "seized.jpg", pattern(400, 300), make="Canon", model="EOS 5D",
                      taken="2021:06:01 10:00:00")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    report = run(store, [path])
    assert report.errors == []
    [evidence] = report.imported
    assert evidence.camera == "Canon EOS 5D" and evidence.taken_at is not None
    assert "truncated JPEG" in evidence.metadata["damaged"]
    assert any("flagged as damaged" in n for n in evidence.metadata["notes"])
    assert store.evidence_file(evidence.sha256).read_bytes() == path.read_bytes()  # kept exactly as seized
    assert store.thumb_path(evidence.sha256).is_file()  # the part that decodes is shown


def test_a_truncated_png_is_flagged_not_blamed_on_its_exif(tmp_path: Path, store: CaseStore) -> None:
    buffer = io.BytesIO()
    pattern(300, 200).save(buffer, "PNG")
    data = buffer.getvalue()
    path = tmp_path / "broken.png"
    path.write_bytes(data[: len(data) // 2])
    report = run(store, [path])
    [evidence] = report.imported
    assert "PNG pixel data is damaged" in evidence.metadata["damaged"]
    assert not any("EXIF" in n for n in evidence.metadata["notes"])


def test_damaged_tiff_and_binary_files_get_the_right_sentence(tmp_path: Path) -> None:
    tiff = io.BytesIO()
    pattern(40, 30).save(tiff, "TIFF")
    damaged = tmp_path / "scan.tif"
    damaged.write_bytes(tiff.getvalue()[:8] + b"\x00" * 24)
    with pytest.raises(EvidenceError, match="is a damaged TIFF") as info:
        open_image(damaged, max_pixels=10**9)
    assert "does not import" not in str(info.value)
    binary = tmp_path / "blob.dat"
    binary.write_bytes(bytes(range(1, 32)) * 3)
    with pytest.raises(EvidenceError, match="not an image"):
        open_image(binary, max_pixels=10**9)
    text = tmp_path / "notes.txt"
    text.write_text("Hafen bei Nacht, gesehen von der Fähre\n" * 3)
    with pytest.raises(EvidenceError, match="a text file"):
        open_image(text, max_pixels=10**9)


def test_an_mpo_is_stored_with_its_extension(tmp_path: Path, store: CaseStore) -> None:
    path = tmp_path / "stereo.mpo"
    pattern(200, 150).save(path, "MPO", save_all=True, append_images=[pattern(200, 150)])
    report = run(store, [path])
    [evidence] = report.imported
    assert evidence.format == "MPO"
    assert store.evidence_file(evidence.sha256).suffix == ".mpo"


def test_decoder_messages_become_notes_about_the_file(capfd: pytest.CaptureFixture[str]) -> None:
    with _captured_diagnostics() as lines:
        warnings.warn("Corrupt EXIF data.", UserWarning, stacklevel=1)
        os.write(2, b"TIFFReadDirectory: Warning, Unknown field with tag 50341 encountered.\n")
    assert lines == [
        "the decoder warned: Corrupt EXIF data.",
        "the decoder reported: TIFFReadDirectory: Warning, Unknown field with tag 50341 encountered.",
    ]
    assert "TIFFReadDirectory" not in capfd.readouterr().err  # nothing anonymous on the terminal


def test_a_small_png_that_decodes_large_is_thumbnailed_in_bounds(tmp_path: Path, store: CaseStore) -> None:
    path = deep_png(tmp_path / "deep.png", 13000, 13000)  # 338 MB of 16-bit samples once decoded
    assert path.stat().st_size < 1_000_000
    report = run(store, [path])
    [evidence] = report.imported
    assert (evidence.width, evidence.height) == (13000, 13000)
    assert evidence.metadata["thumbnail_source"] == "decoded"
    with Image.open(store.thumb_path(evidence.sha256)) as thumb:
        assert thumb.size == (256, 256)


def test_above_the_decode_budget_the_file_is_stored_without_a_thumbnail(
    tmp_path: Path, store: CaseStore
) -> None:
    path = deep_png(tmp_path / "deep.png", 3000, 3000)  # 18 MB decoded
    report = run(store, [path], decode_budget_bytes=8 * 2**20)
    [evidence] = report.imported
    assert "MiB once decoded" in evidence.metadata["oversize"]
    assert evidence.metadata["thumbnail_source"] == "none"
    assert not store.thumb_path(evidence.sha256).exists()
    assert store.evidence_file(evidence.sha256).read_bytes() == path.read_bytes()
