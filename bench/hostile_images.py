"""Memory and time of preparing hostile images: the bounded step against the unbounded one it replaced.

Each case runs in a fresh child process, whose peak resident memory (``ru_maxrss``) and wall time are
recorded, once through geodesk's bounded step and once through the baseline: what the code did before
(decode in full, rotate, convert, pad to ``max(w, h)²`` for a model; for the import thumbnail of a
16-bit PNG, read EXIF through ``getexif`` and scale the full-size samples as float64). The baseline of
the 36,000,000×1 PNG is not run: it would ask for a 1.3e15-pixel canvas.

    .venv/bin/python -m bench.hostile_images        # writes bench/results/hostile_images.json
"""

from __future__ import annotations

import json
import platform
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "hostile_images.json"

CHILD = r"""
import json, resource, sys, time
from PIL import Image, ImageOps
Image.MAX_IMAGE_PIXELS = None
path, how, kind = sys.argv[1], sys.argv[2], sys.argv[3]
started = time.perf_counter()
if kind == "model":
    if how == "bounded":
        from geodesk.engine.imaging import prepare_image
        with Image.open(path) as img:
            out = prepare_image(img, max_aspect=float("inf"))
    else:
        with Image.open(path) as img:
            rgb = ImageOps.exif_transpose(img).convert("RGB")
        side = max(rgb.size)
        out = Image.new("RGB", (side, side), (122, 116, 104))
        out.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
else:  # the import's thumbnail
    if how == "bounded":
        from geodesk.evidence.metadata import read_metadata
        from geodesk.evidence.thumbnails import make_thumbnail
        with Image.open(path) as img:
            read_metadata(img)
            out, _ = make_thumbnail(img, 1)
    else:
        import numpy as np
        with Image.open(path) as img:
            img.getexif()  # decodes a PNG in full
            samples = np.asarray(img, dtype=np.float64)
            low, high = float(samples.min()), float(samples.max())
            scaled = (samples - low) * (255.0 / (high - low)) if high > low else np.zeros_like(samples)
            out = Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
            out.thumbnail((256, 256))
print(json.dumps({"seconds": round(time.perf_counter() - started, 3), "out": list(out.size),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def _png_rows(path: Path, width: int, height: int, depth: int) -> Path:
    """A greyscale PNG written row by row (the file is tiny, the picture is not)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" + (b"\x12\x34" if depth == 16 else b"\x5a") * width
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    signature = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(signature + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def _run(path: Path, how: str, kind: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), how, kind], capture_output=True, text=True,
                          check=False, timeout=900, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return dict(json.loads(done.stdout))


def main() -> int:
    from PIL import Image

    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="geodesk-hostile-") as tmp:
        folder = Path(tmp)
        wide_png = _png_rows(folder / "wide.png", 12000, 3000, 8)
        line_png = _png_rows(folder / "line.png", 36_000_000, 1, 8)
        wide_jpeg = folder / "wide.jpg"
        Image.new("RGB", (20000, 2000), (200, 30, 30)).save(wide_jpeg, quality=50)
        deep_png = _png_rows(folder / "deep.png", 13000, 13000, 16)
        for name, path, kind, baseline in (
            ("12000x3000 PNG, model input", wide_png, "model", True),
            ("36000000x1 PNG, model input", line_png, "model", False),
            ("20000x2000 JPEG, model input", wide_jpeg, "model", True),
            ("13000x13000 16-bit PNG, import thumbnail", deep_png, "thumbnail", True),
        ):
            entry: dict[str, Any] = {"case": name, "file_bytes": path.stat().st_size,
                                     "bounded": _run(path, "bounded", kind)}
            skipped = {"skipped": "1.3e15-pixel canvas"}
            entry["baseline"] = _run(path, "baseline", kind) if baseline else skipped
            b, u = entry["bounded"], entry["baseline"]
            if "peak_rss_mb" in b and "peak_rss_mb" in u:
                entry["memory_ratio_baseline_over_bounded"] = round(u["peak_rss_mb"] / b["peak_rss_mb"], 2)
                entry["time_ratio_baseline_over_bounded"] = round(u["seconds"] / max(b["seconds"], 1e-3), 2)
            cases.append(entry)
            print(json.dumps(entry))
    import PIL

    document = {"machine": {"platform": platform.platform()},
                "versions": {"python": platform.python_version(), "pillow": PIL.__version__},
                "what": "peak RSS (ru_maxrss of a fresh child, with interpreter and imports) and time",
                "cases": cases}
    RESULT.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
