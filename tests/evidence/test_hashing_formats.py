"""Hashing, format detection and the per-file errors of opening images."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
from PIL import ImageFile

from geodesk.evidence import formats
from geodesk.evidence.formats import (
    EvidenceError,
    check_jpeg_structure,
    describe_unknown,
    is_heif,
    open_image,
)
from geodesk.evidence.hashing import CHUNK_SIZE, copy_and_hash, sha256_file
from tests.evidence.fixtures import pattern, png_bomb, write_jpeg

LIMIT = 10_000_000


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 17])
def test_streaming_hash_and_copy_match_hashlib(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    assert sha256_file(source) == hashlib.sha256(data).hexdigest()
    sha, copied = copy_and_hash(source, tmp_path / "dst.bin")
    assert (sha, copied) == (hashlib.sha256(data).hexdigest(), size)
    assert (tmp_path / "dst.bin").read_bytes() == data


def test_copy_never_overwrites_an_existing_target(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"new")
    (tmp_path / "dst").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        copy_and_hash(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == b"old"


def test_heif_sniffing() -> None:
    assert is_heif(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00")
    assert is_heif(b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00")
    assert not is_heif(b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00")  # an MP4 video
    assert "video or AVIF" in describe_unknown(b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00")


def test_heic_without_pillow_heif_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_heif_state", False)
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100)
    with pytest.raises(EvidenceError, match=r"geodesk\[heic\]"):
        open_image(path, max_pixels=LIMIT)


def test_heic_round_trip_when_pillow_heif_is_installed(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip(
        "pillow_heif", reason="the optional extra geodesk[heic] is not installed"
    )
    pillow_heif.register_heif_opener()
    path = tmp_path / "a.heic"
    pattern(64, 48).save(path, "HEIF")
    with open_image(path, max_pixels=LIMIT) as image:
        assert image.size == (64, 48)


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"", "empty (0 bytes)"),
        (b"just some words\n", "text file"),
        (b"GIF89a" + b"\x00" * 40, "GIF file"),
        (b"\xff\xd8\xff\xe0garbage", "damaged JPEG"),
        (b"\x07\x99\xfe\x00" * 10, "not an image"),
    ],
)
def test_unopenable_content_gets_a_clear_error(tmp_path: Path, content: bytes, phrase: str) -> None:
    path = tmp_path / "file.jpg"
    path.write_bytes(content)
    with pytest.raises(EvidenceError, match=re.escape(phrase)):
        open_image(path, max_pixels=LIMIT)


def test_pixel_limit_and_real_bomb(tmp_path: Path) -> None:
    path = write_jpeg(tmp_path / "a.jpg", pattern(200, 100))
    with pytest.raises(EvidenceError, match=r"decompression bomb.*20,000 pixels"):
        open_image(path, max_pixels=19_999)
    with open_image(path, max_pixels=20_000) as image:
        assert image.size == (200, 100)
    with pytest.raises(EvidenceError, match="decompression bomb"):
        open_image(png_bomb(tmp_path / "bomb.png"), max_pixels=formats.default_max_pixels())


def test_unreadable_file(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: root reads files whatever their permissions")
    path = write_jpeg(tmp_path / "a.jpg")
    path.chmod(0)
    try:
        with pytest.raises(EvidenceError, match="permission denied"):
            open_image(path, max_pixels=LIMIT)
    finally:
        path.chmod(0o644)


def _jpeg(**params: object) -> bytes:
    buffer = io.BytesIO()
    pattern(120, 80).save(buffer, "JPEG", **params)
    return buffer.getvalue()


@pytest.mark.parametrize("params", [{}, {"progressive": True}, {"quality": 50, "optimize": True}])
def test_jpeg_structure_accepts_whole_files_and_trailers(tmp_path: Path, params: dict[str, object]) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg(**params))
    check_jpeg_structure(path)
    path.write_bytes(_jpeg(**params) + b"VENDOR-TRAILER" * 10)  # data after the end marker is allowed
    check_jpeg_structure(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_jpeg_structure_rejects_truncation(tmp_path: Path, keep: float) -> None:
    data = _jpeg(progressive=True)
    path = tmp_path / "a.jpg"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(EvidenceError, match="truncated"):
        check_jpeg_structure(path)


def test_jpeg_structure_rejects_a_broken_marker_chain(tmp_path: Path) -> None:
    data = bytearray(_jpeg())
    data[2] = 0x12  # the first marker after SOI is no longer a marker
    path = tmp_path / "a.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(EvidenceError, match="damaged JPEG"):
        check_jpeg_structure(path)


def test_open_is_lazy(tmp_path: Path) -> None:
    """Opening reads headers only: the pixel decode happens later (thumbnail), where errors are caught."""
    path = write_jpeg(tmp_path / "a.jpg", pattern(400, 300))
    with open_image(path, max_pixels=LIMIT) as image:
        assert isinstance(image, ImageFile.ImageFile) and image.tile  # tiles still to decode
