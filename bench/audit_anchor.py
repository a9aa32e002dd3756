"""What the workspace audit anchor and the record digests cost a write, and what verify costs.

    .venv/bin/python -m bench.audit_anchor [--writes 300] [--out FILE]

Same case, same kind of write (one ``evidence.add`` transaction each: the row, its record digest and
its audit entry), interleaved in blocks of ten so that disk and cache effects hit both sides alike:

- ``anchored``: the store as geodesk opens it in a workspace with a key: the pending head is written
  to ``integrity/anchors.db`` before COMMIT and confirmed after;
- ``unanchored``: the same store with its anchor detached (what a write cost before anchors; the record
  digest is computed on both sides).

Then ``case verify`` on the resulting case (re-hashing every original, every record digest, the
schema and the anchor). Writes bench/results/audit_anchor.json with medians per write.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300, help="timed writes per side")
    parser.add_argument("--out", default="audit_anchor.json", help="file name under bench/results/")
    args = parser.parse_args(argv)

    from geodesk.atomic import atomic_write_json
    from geodesk.domain import Evidence, GpsPoint
    from geodesk.services.verify import verify_report
    from geodesk.store import CaseStore, Workspace

    def evidence(store: CaseStore, n: int) -> Evidence:
        content = f"photo {n} ".encode() * 200
        sha = hashlib.sha256(content).hexdigest()
        path = store.evidence_path(sha, ".jpg")
        path.write_bytes(content)
        path.chmod(0o400)
        return Evidence(
            sha256=sha,
            original_name=f"IMG_{n:05d}.jpg",
            size_bytes=len(content),
            format="JPEG",
            width=4000,
            height=3000,
            imported_at=datetime.now(UTC),
            source_path=f"/media/card/DCIM/IMG_{n:05d}.jpg",
            gps=GpsPoint(43.29, 5.37, 12.0),
            taken_at="2026-05-01T10:00:00+02:00",
            camera="Canon EOS",
        )

    with tempfile.TemporaryDirectory(prefix="geodesk-bench-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        case = ws.create_case("Anchor bench")
        times: dict[str, list[float]] = {"anchored": [], "unanchored": []}
        n = 0
        with ws.open_case(case) as store:
            anchor = store.anchor
            assert anchor is not None
            for _ in range(max(1, args.writes // 10)):
                for side in ("anchored", "unanchored"):
                    store.anchor = anchor if side == "anchored" else None
                    for _ in range(10):
                        item = evidence(store, n)
                        n += 1
                        start = time.perf_counter()
                        store.evidence.add(item)
                        times[side].append(time.perf_counter() - start)
            store.anchor = anchor
            # The unanchored writes above are, to the anchor, writes from outside geodesk: verify says
            # so; that is expected here and does not change the time it takes.
            start = time.perf_counter()
            report = verify_report(store)
            verify_s = time.perf_counter() - start
            records = store.counts()["evidence"]

    anchored = statistics.median(times["anchored"])
    unanchored = statistics.median(times["unanchored"])
    document: dict[str, Any] = {
        "benchmark": "audit_anchor",
        "description": "one evidence.add transaction with and without the workspace audit anchor, "
        "same case, interleaved blocks of 10; then case verify on the case",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "sqlite": sqlite3.sqlite_version,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "writes_per_side": len(times["anchored"]),
        "anchored_median_ms": round(anchored * 1000, 3),
        "unanchored_median_ms": round(unanchored * 1000, 3),
        "anchor_cost_ms": round((anchored - unanchored) * 1000, 3),
        "ratio_anchored_to_unanchored": round(anchored / unanchored, 3),
        "verify_records": records,
        "verify_s": round(verify_s, 3),
        "verify_problems": len(report.problems),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / args.out, document)
    print(
        f"anchored {document['anchored_median_ms']} ms, unanchored {document['unanchored_median_ms']} ms "
        f"per write; verify of {records} records {document['verify_s']} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
