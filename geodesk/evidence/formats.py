"""Which files are evidence images, and opening them with errors a person can act on.

geodesk imports JPEG, PNG, TIFF, WebP and (with the optional ``pillow-heif``) HEIC/HEIF. Pillow is
asked only for those formats, so a hostile file never reaches the rarer decoders. Every refusal is an
:class:`EvidenceError` whose text says what is wrong with the file and, where possible, what to do.
"""

from __future__ import annotations

import mmap
import os
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Pillow's format names. "HEIF" is registered by pillow-heif when it is installed.
BASE_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP")
HEIF_FORMAT = "HEIF"
HEIC_INSTALL_HINT = "install the optional extra with `pip install 'geodesk[heic]'` (pillow-heif) to import it"

# ISO-BMFF brands (bytes 8..12 of an `ftyp` box) that mean HEIF/HEIC still images.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}

# Magic numbers of images geodesk does not take, so the error can name the format.
_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"8BPS", "Photoshop PSD"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
)
# Bytes allowed in a text file besides printable characters: tab, line feed, form feed, carriage return.
_TEXT_CONTROLS = {"\t", "\n", "\f", "\r"}


class EvidenceError(Exception):
    """A file cannot be imported; the message is a sentence about that file a person can act on."""


def default_max_pixels() -> int:
    """The import's pixel limit: Pillow's own decompression-bomb error threshold (2 × MAX_IMAGE_PIXELS).

    Read at call time, so lowering ``Image.MAX_IMAGE_PIXELS`` in the importing process lowers it for
    the worker processes too (they get the number, not Pillow's global).
    """
    limit = Image.MAX_IMAGE_PIXELS
    return 2 * int(limit) if limit else 2**62


_heif_state: bool | None = None


def heif_available() -> bool:
    """Register pillow-heif's opener once per process; False when the extra is not installed."""
    global _heif_state
    if _heif_state is None:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_state = True
        except ImportError:
            _heif_state = False
    return _heif_state


def supported_formats() -> tuple[str, ...]:
    return (*BASE_FORMATS, HEIF_FORMAT) if heif_available() else BASE_FORMATS


def is_heif(head: bytes) -> bool:
    """True for an ISO-BMFF file whose major brand is a HEIF still-image brand."""
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def describe_unknown(head: bytes) -> str:
    """A short phrase for content Pillow could not open as a supported image."""
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            return f"a {name} file, which geodesk does not import"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1")
        return f"an ISO media file of brand {brand!r} (video or AVIF), not an image geodesk imports"
    claimed = _claimed_format(head)
    if claimed != "image":  # a format geodesk imports, whose header Pillow could not parse
        return f"a damaged {claimed} (its header cannot be parsed)"
    if _looks_like_text(head):
        return "a text file, not an image"
    return "not an image (unrecognised binary content)"


def _looks_like_text(head: bytes) -> bool:
    """True when the first bytes are UTF-8 text: printable characters and ordinary white space only."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # only a character cut off at the end of the sample is forgiven
            return False
        text = head[: exc.start].decode("utf-8")
    return bool(text) and all(ch.isprintable() or ch in _TEXT_CONTROLS for ch in text)


def _claimed_format(head: bytes) -> str:
    """What the first bytes claim the file is, for error messages about damaged files."""
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    return "image"


def open_image(path: str | os.PathLike[str], *, max_pixels: int) -> Image.Image:
    """Open ``path`` lazily (headers only) as a supported image, or raise :class:`EvidenceError`."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            head = stream.read(64)
    except PermissionError:
        raise EvidenceError("cannot be read: permission denied (check the file's permissions)") from None
    except OSError as exc:
        raise EvidenceError(f"cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise EvidenceError("the file is empty (0 bytes)")
    if is_heif(head) and not heif_available():
        raise EvidenceError(f"is a HEIC/HEIF image and HEIC support is not installed; {HEIC_INSTALL_HINT}")
    try:
        with warnings.catch_warnings():
            # Large but plausible photos (100+ MP) only warn in Pillow; our own limit decides below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path, formats=list(supported_formats()))
    except Image.DecompressionBombError as exc:
        raise EvidenceError(f"refused as a possible decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise EvidenceError(f"is {describe_unknown(head)}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        claimed = _claimed_format(head)
        raise EvidenceError(f"is a damaged {claimed}: its header cannot be parsed ({exc})") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise EvidenceError(f"is a damaged image: it claims a size of {width}×{height} pixels")
    if width * height > max_pixels:
        image.close()
        raise EvidenceError(
            f"refused as a possible decompression bomb: {width}×{height} = {width * height:,} pixels is "
            f"above the import limit of {max_pixels:,} pixels"
        )
    return image


def check_jpeg_structure(path: str | os.PathLike[str]) -> None:
    """Check a JPEG's marker chain up to its first scan and that an end-of-image marker follows it.

    This is the cheap integrity check of the fast path (no pixel decoding): it catches truncated files,
    the commonest damage, in well under a millisecond. Data after the end marker (MPF previews, vendor
    trailers) is allowed, as it is in camera files.
    """
    with Path(path).open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        size = len(data)
        if data[:2] != b"\xff\xd8":
            raise EvidenceError("is a damaged JPEG: it does not start with the JPEG start marker")
        pos = 2
        while True:
            # Markers may be padded with extra 0xFF bytes.
            while pos < size and data[pos] == 0xFF and pos + 1 < size and data[pos + 1] == 0xFF:
                pos += 1
            if pos + 4 > size:
                raise EvidenceError("is a truncated JPEG: the file ends inside its header")
            if data[pos] != 0xFF:
                raise EvidenceError(f"is a damaged JPEG: no marker where one is expected at byte {pos}")
            marker = data[pos + 1]
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if length < 2:
                raise EvidenceError(f"is a damaged JPEG: a header segment at byte {pos} has length {length}")
            end = pos + 2 + length
            if end > size:
                raise EvidenceError("is a truncated JPEG: the file ends inside its header")
            if marker == 0xDA:  # start of scan: entropy-coded data follows
                break
            pos = end
        # Most files end with the marker (perhaps NUL-padded): checking the tail avoids scanning megabytes.
        tail = data[max(end, size - 4096) :].rstrip(b"\x00")
        if not tail.endswith(b"\xff\xd9") and data.find(b"\xff\xd9", end) < 0:
            raise EvidenceError("is a truncated JPEG: the image data stops before the end-of-image marker")
