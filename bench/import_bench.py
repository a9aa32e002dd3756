"""Evidence import benchmark: geodesk import vs ``exiftool -json`` + ``sha256sum`` over the same files.

    .venv/bin/python -m bench.import_bench --n 100 500

For each N it generates N 12-megapixel camera-like JPEGs (EXIF with GPS, capture time and offset,
camera, orientation, and a 160×120 embedded thumbnail, as cameras and phones write them) into a temp
folder, then times, in the same run and alternating:
  baseline  ``exiftool -json FILES`` then ``sha256sum FILES`` (metadata + hash, single-threaded tools)
  geodesk   a fresh case, ``import_into`` (hash while copying into the store, EXIF/XMP, structure check,
            thumbnail, place of the GPS point, one SQLite transaction per file) on every core
and, for information, geodesk with ``verify_decode`` (every JPEG decoded at 1/8 scale).
Reported: seconds (median of --repeat runs), ratio geodesk/baseline (target <= 1.2), seconds per file
(flat in N = linear cost), and the peak RSS of the import: parent + all worker processes sampled
together every 20 ms with psutil (target < 500 MB whatever N). Writes bench/results/import.json.

Generation is fast: one base image is encoded once; each file gets that JPEG's pixel data with its
own EXIF block (different GPS, time, camera), so every file has a different SHA-256.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import piexif
import psutil
from PIL import Image

RESULTS = Path(__file__).resolve().parent / "results" / "import.json"
WIDTH, HEIGHT = 4000, 3000  # 12 megapixels
TARGET_RATIO = 1.2
TARGET_RSS_MB = 500.0


# --- data ---------------------------------------------------------------------------------------------


def base_jpeg(seed: int = 0) -> bytes:
    """A 4000×3000 photo-like JPEG without EXIF: smooth gradients + sensor-like noise (σ = 8).

    That noise level makes the file about 3 MB at quality 90, like a 12 MP phone photo.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)  # (H, W) each
    rgb = np.stack(
        [
            128 + 60 * np.sin(x / 300) + 40 * np.cos(y / 200),
            128 + 60 * np.cos(x / 500 + y / 700),
            100 + 50 * np.sin((x + y) / 400),
        ],
        axis=-1,
    )  # (H, W, 3)
    rgb += rng.normal(0.0, 8.0, rgb.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _dms(value: float) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
    return (degrees, 1), (minutes, 1), (seconds, 10000)


def exif_block(i: int, thumbnail: bytes) -> bytes:
    rng = np.random.default_rng(i)
    lat, lon = float(rng.uniform(-60, 70)), float(rng.uniform(-180, 180))
    cameras = [
        (b"Apple", b"iPhone 12"),
        (b"Canon", b"Canon EOS 5D Mark IV"),
        (b"NIKON CORPORATION", b"NIKON D750"),
    ]
    make, model = cameras[i % len(cameras)]
    exif = {
        "0th": {
            piexif.ImageIFD.Make: make,
            piexif.ImageIFD.Model: model,
            piexif.ImageIFD.Orientation: 6 if i % 4 == 0 else 1,
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: f"2023:05:{1 + i % 28:02d} 12:{i % 60:02d}:00".encode(),
            piexif.ExifIFD.OffsetTimeOriginal: b"+02:00",
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
            piexif.GPSIFD.GPSLatitude: _dms(lat),
            piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
            piexif.GPSIFD.GPSLongitude: _dms(lon),
            piexif.GPSIFD.GPSAltitudeRef: 0,
            piexif.GPSIFD.GPSAltitude: (1000 + i, 10),
        },
        "1st": {piexif.ImageIFD.Compression: 6},
        "thumbnail": thumbnail,
    }
    return bytes(piexif.dump(exif))


def generate(n: int, folder: Path) -> int:
    """N JPEGs in ``folder``: the base pixel data behind a per-file EXIF APP1 segment. Returns bytes."""
    base = base_jpeg()
    thumb = io.BytesIO()
    Image.open(io.BytesIO(base)).resize((160, 120)).save(thumb, "JPEG", quality=80)
    total = 0
    for i in range(n):
        app1 = exif_block(i, thumb.getvalue())
        data = base[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + base[2:]
        (folder / f"IMG_{i:05d}.jpg").write_bytes(data)
        total += len(data)
    return total


# --- measuring ----------------------------------------------------------------------------------------


class RssSampler:
    """Peak of (parent RSS + RSS of every descendant process), sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):
                total = me.memory_info().rss
                # Workers are children of the forkserver, itself our child: recursive finds them all.
                for child in me.children(recursive=True):
                    with contextlib.suppress(psutil.Error):  # a process may exit between listing and reading
                        total += child.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def time_baseline(files: list[str]) -> dict[str, float]:
    started = time.perf_counter()
    subprocess.run(["exiftool", "-json", "-q", *files], check=True, stdout=subprocess.DEVNULL)
    exif_s = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
    sha_s = time.perf_counter() - started
    return {"exiftool_s": exif_s, "sha256sum_s": sha_s, "total_s": exif_s + sha_s}


def time_import(
    folder: Path, workspace: Path, n: int, verify_decode: bool, workers: int | None
) -> dict[str, Any]:
    from geodesk.evidence.pipeline import ImportOptions
    from geodesk.services.importing import import_into
    from geodesk.store import Workspace

    shutil.rmtree(workspace, ignore_errors=True)
    ws = Workspace(workspace)
    case = ws.create_case("bench")
    with ws.open_case(case) as store, RssSampler() as rss:
        started = time.perf_counter()
        report = import_into(
            store, [folder], options=ImportOptions(workers=workers, verify_decode=verify_decode)
        )
        seconds = time.perf_counter() - started
    if len(report.imported) != n or report.errors:
        raise SystemExit(
            f"import went wrong: {len(report.imported)} of {n} imported, errors {report.errors[:3]}"
        )
    return {
        "seconds": seconds,
        "peak_rss_mb": rss.peak / 2**20,
        "step_seconds_summed": {k: round(v, 3) for k, v in sorted(report.timings.items())},
        "thumbnail_sources": sorted({e.metadata["thumbnail_source"] for e in report.imported}),
    }


def run(n: int, repeat: int, workers: int | None, scratch: Path) -> dict[str, Any]:
    folder = scratch / f"images-{n}"
    folder.mkdir()
    started = time.perf_counter()
    size = generate(n, folder)
    generated_s = time.perf_counter() - started
    files = sorted(str(p) for p in folder.iterdir())
    baseline, fast, full = [], [], []
    for _ in range(repeat):  # alternate, so background load hits both sides alike
        baseline.append(time_baseline(files))
        fast.append(time_import(folder, scratch / "ws", n, False, workers))
        full.append(time_import(folder, scratch / "ws", n, True, workers))
    shutil.rmtree(folder)
    shutil.rmtree(scratch / "ws", ignore_errors=True)
    base_s = statistics.median(b["total_s"] for b in baseline)
    fast_s = statistics.median(f["seconds"] for f in fast)
    full_s = statistics.median(f["seconds"] for f in full)
    return {
        "n": n,
        "total_mb": round(size / 1e6, 1),
        "generate_s": round(generated_s, 2),
        "baseline": {
            "exiftool_s": round(statistics.median(b["exiftool_s"] for b in baseline), 3),
            "sha256sum_s": round(statistics.median(b["sha256sum_s"] for b in baseline), 3),
            "seconds": round(base_s, 3),
            "per_file_ms": round(1000 * base_s / n, 2),
        },
        "geodesk": {
            "seconds": round(fast_s, 3),
            "per_file_ms": round(1000 * fast_s / n, 2),
            "ratio": round(fast_s / base_s, 3),
            "peak_rss_mb": round(max(f["peak_rss_mb"] for f in fast), 1),
            "runs_s": [round(f["seconds"], 3) for f in fast],
            "step_seconds_summed": fast[-1]["step_seconds_summed"],
            "thumbnail_sources": fast[-1]["thumbnail_sources"],
        },
        "geodesk_verify_decode": {
            "seconds": round(full_s, 3),
            "per_file_ms": round(1000 * full_s / n, 2),
            "ratio": round(full_s / base_s, 3),
            "peak_rss_mb": round(max(f["peak_rss_mb"] for f in full), 1),
            "step_seconds_summed": full[-1]["step_seconds_summed"],
        },
        "baseline_runs_s": [round(b["total_s"], 3) for b in baseline],
    }


def machine() -> dict[str, Any]:
    import PIL

    import geodesk

    exiftool = subprocess.run(["exiftool", "-ver"], capture_output=True, text=True, check=True).stdout.strip()
    sha = subprocess.run(["sha256sum", "--version"], capture_output=True, text=True, check=True).stdout
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "geodesk": geodesk.__version__,
        "exiftool": exiftool,
        "sha256sum": sha.splitlines()[0] if sha else "",
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 500], help="numbers of files")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, alternating (median kept)")
    parser.add_argument("--workers", type=int, default=None, help="import workers (default: every core)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if shutil.which("exiftool") is None:
        parser.error("exiftool is missing: apt-get install -y libimage-exiftool-perl")
    results = []
    with tempfile.TemporaryDirectory(prefix="geodesk-import-bench-") as tmp:
        for n in args.n:
            result = run(n, args.repeat, args.workers, Path(tmp))
            results.append(result)
            g, b = result["geodesk"], result["baseline"]
            full = result["geodesk_verify_decode"]
            print(
                f"N={n}: baseline {b['seconds']:.2f}s ({b['per_file_ms']:.1f} ms/file), "
                f"geodesk {g['seconds']:.2f}s ({g['per_file_ms']:.1f} ms/file) ratio {g['ratio']:.2f}, "
                f"peak RSS {g['peak_rss_mb']:.0f} MB; verify-decode ratio {full['ratio']:.2f}",
                flush=True,
            )
    document = {
        "benchmark": "evidence import",
        "command": "python -m bench.import_bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "targets": {"ratio_max": TARGET_RATIO, "peak_rss_mb_max": TARGET_RSS_MB},
        "machine": machine(),
        "results": results,
        "met": {
            "ratio": all(r["geodesk"]["ratio"] <= TARGET_RATIO for r in results),
            "peak_rss": all(r["geodesk"]["peak_rss_mb"] < TARGET_RSS_MB for r in results),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temp = args.out.with_name(f".{args.out.name}.tmp")
    temp.write_text(json.dumps(document, indent=2) + "\n")
    temp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
