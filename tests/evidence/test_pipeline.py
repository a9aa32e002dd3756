"""The import pipeline on a real case store: good files in, broken ones reported, nothing half-written."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from PIL import Image

from geodesk.domain.model import GpsPoint, Place
from geodesk.evidence.pipeline import (
    STAGING_DIR,
    ImportOptions,
    ImportReport,
    collect_sources,
    run_import,
)
from geodesk.store import CaseStore, Workspace
from tests.evidence.fixtures import (
    broken_corpus,
    crashing_worker,
    gps_ifd,
    jpeg_thumbnail,
    pattern,
    write_image,
    write_jpeg,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CaseStore]:
    ws = Workspace(tmp_path / "ws")
    case = ws.create_case("Harbour")
    with ws.open_case(case) as opened:
        yield opened


def fake_places(points: Sequence[GpsPoint]) -> list[Place | None]:
    """Stands in for the gazetteer (tested in tests/geo): a place that echoes the latitude."""
    return [Place("XX", "Testland", None, f"lat {p.lat:.1f}", 1.0) for p in points]


def good_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    picture = pattern(640, 480)
    return {
        "harbour.jpg": write_jpeg(
            folder / "harbour.jpg",
            picture,
            gps=gps_ifd(59.9139, 10.7522, 12.0),
            taken="2023:05:01 12:34:56",
            offset="+02:00",
            make="Apple",
            model="iPhone 12",
            orientation=6,
            thumbnail=jpeg_thumbnail(picture),
        ),
        "plain.png": write_image(folder / "plain.png", "PNG"),
        "scan.tif": write_image(folder / "scan.tif", "TIFF", gps=gps_ifd(-33.9, 18.4)),
        "web.webp": write_image(folder / "web.webp", "WEBP"),
    }


def run(store: CaseStore, paths: Sequence[Path | str], **kwargs: object) -> ImportReport:
    sources, refused = collect_sources(paths)
    options = kwargs.pop("options", ImportOptions(workers=2))
    report = run_import(store, sources, options=options, locate=fake_places, **kwargs)  # type: ignore[arg-type]
    report.errors[:0] = refused
    return report


def assert_consistent(store: CaseStore) -> None:
    """Every row has its read-only original and thumbnail, every file has its row, no staging leftovers."""
    rows = {e.sha256 for e in store.evidence.list()}
    files = {p.name.split(".")[0] for p in store.evidence_dir.rglob("*") if p.is_file()}
    assert files == rows
    for sha in rows:
        original = store.evidence_file(sha)
        assert stat.S_IMODE(original.stat().st_mode) & 0o222 == 0, "originals are read-only"
        assert store.thumb_path(sha).is_file()
    assert {p.name.split(".")[0] for p in store.thumbs_dir.iterdir()} == rows
    staging = store.path / STAGING_DIR
    assert not staging.exists() or not any(staging.iterdir())


# --- collecting -----------------------------------------------------------------------------------------


def test_collect_walks_sorted_skips_hidden_and_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "seized"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / ".hidden_dir").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for rel in ["z.jpg", "a.jpg", "b/deeper/c.jpg", "b/b.jpg", ".secret.jpg", ".hidden_dir/x.jpg"]:
        (root / rel).write_bytes(b"x")
    (outside / "o.jpg").write_bytes(b"x")
    (root / "link_in.jpg").symlink_to(root / "b" / "b.jpg")  # same real file as b/b.jpg: imported once
    (root / "link_out.jpg").symlink_to(outside / "o.jpg")
    (root / "dir_out").symlink_to(outside)
    (root / "dangling.jpg").symlink_to(root / "nothing.jpg")
    os.mkfifo(root / "pipe.jpg")

    sources, errors = collect_sources([root, root / "a.jpg", tmp_path / "missing.jpg"])
    shown = [Path(s.path).relative_to(root).as_posix() for s in sources]
    # Files of a folder before its sub-folders, each sorted; link_in.jpg reaches b/b.jpg first, and the
    # same real file is not listed twice.
    assert shown == ["a.jpg", "link_in.jpg", "z.jpg", "b/deeper/c.jpg"]
    assert sources[1].read_path == str((root / "b" / "b.jpg").resolve())
    messages = {Path(e.path).name: e.error for e in errors}
    assert "outside the imported folder" in messages["link_out.jpg"]
    assert "outside the imported folder" in messages["dir_out"]
    assert "broken symbolic link" in messages["dangling.jpg"]
    assert "not a regular file" in messages["pipe.jpg"]
    assert "does not exist" in messages["missing.jpg"]


def test_a_named_symlink_is_checked_against_its_own_folder(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    target = tmp_path / "in" / "real.jpg"
    target.write_bytes(b"x")
    (tmp_path / "in" / "near.jpg").symlink_to(target)
    (tmp_path / "far.jpg").symlink_to(target)  # named directly, but points into a sub-folder: fine
    (tmp_path / "in" / "up.jpg").symlink_to(tmp_path / "far.jpg")  # resolves to in/real.jpg: inside
    other = tmp_path / "other"
    other.mkdir()
    (other / "away.jpg").symlink_to(target)  # points out of other/
    sources, errors = collect_sources(
        [tmp_path / "in" / "near.jpg", tmp_path / "far.jpg", other / "away.jpg"]
    )
    assert [s.read_path for s in sources] == [str(target.resolve())]
    assert [Path(e.path).name for e in errors] == ["away.jpg"]


# --- importing ------------------------------------------------------------------------------------------


def test_batch_with_broken_files_imports_the_good_ones(tmp_path: Path, store: CaseStore) -> None:
    folder = tmp_path / "batch"
    good = good_files(folder)
    outside = tmp_path / "outside"
    outside.mkdir()
    expected_errors = broken_corpus(folder, outside=outside)
    before = {name: (p.read_bytes(), p.stat().st_mtime_ns) for name, p in good.items()}

    report = run(store, [folder])

    assert sorted(e.original_name for e in report.imported) == sorted(good)
    errors = {Path(e.path).name: e.error for e in report.errors}
    assert set(errors) == set(expected_errors)
    for name, phrase in expected_errors.items():
        assert phrase in errors[name], (name, errors[name])
    assert report.duplicates == [] and not report.cancelled
    assert_consistent(store)
    for e in report.imported:
        source = good[e.original_name]
        stored = store.evidence_file(e.sha256)
        assert stored.read_bytes() == before[e.original_name][0], "stored original is byte-identical"
        assert source.stat().st_mtime_ns == before[e.original_name][1], "the source is never touched"
        assert source.read_bytes() == before[e.original_name][0]


def test_imported_evidence_carries_metadata_and_place(tmp_path: Path, store: CaseStore) -> None:
    good = good_files(tmp_path / "in")
    report = run(store, [good["harbour.jpg"], good["scan.tif"]])
    by_name = {e.original_name: e for e in report.imported}
    harbour = store.evidence.get(by_name["harbour.jpg"].sha256)
    assert harbour == by_name["harbour.jpg"]
    assert (harbour.format, harbour.width, harbour.height, harbour.orientation) == ("JPEG", 480, 640, 6)
    assert harbour.gps is not None and round(harbour.gps.lat, 4) == 59.9139 and harbour.gps.alt == 12.0
    assert harbour.taken_at == "2023-05-01T12:34:56+02:00"
    assert harbour.camera == "Apple iPhone 12"
    assert harbour.place == Place("XX", "Testland", None, "lat 59.9", 1.0)
    assert harbour.metadata["thumbnail_source"] == "exif-embedded"
    assert harbour.source_path == str(good["harbour.jpg"].absolute())
    assert store.evidence_file(harbour.sha256).suffix == ".jpg"
    with Image.open(store.thumb_path(harbour.sha256)) as thumb:
        assert thumb.height > thumb.width  # orientation applied
    scan = by_name["scan.tif"]
    assert scan.format == "TIFF" and scan.metadata["thumbnail_source"] == "decoded"
    assert store.evidence_file(scan.sha256).suffix == ".tif"


def test_reimport_reports_duplicates_and_copies_nothing(tmp_path: Path, store: CaseStore) -> None:
    good = good_files(tmp_path / "in")
    first = run(store, [tmp_path / "in"])
    stored_before = sorted(p.stat().st_ino for p in store.evidence_dir.rglob("*") if p.is_file())
    shutil.copy(good["plain.png"], tmp_path / "copy_of_plain.png")

    again = run(store, [tmp_path / "in", tmp_path / "copy_of_plain.png"])

    assert again.imported == [] and again.errors == []
    assert sorted(Path(d.path).name for d in again.duplicates) == sorted([*good, "copy_of_plain.png"])
    assert all(not d.within_batch for d in again.duplicates)
    plain = next(d for d in again.duplicates if d.path.endswith("copy_of_plain.png"))
    assert plain.existing_name == "plain.png"
    assert sorted(p.stat().st_ino for p in store.evidence_dir.rglob("*") if p.is_file()) == stored_before
    assert store.evidence.count() == len(first.imported)
    assert_consistent(store)


def test_duplicates_within_one_batch(tmp_path: Path, store: CaseStore) -> None:
    good = good_files(tmp_path / "in")
    shutil.copy(good["web.webp"], tmp_path / "in" / "web_copy.webp")
    report = run(store, [tmp_path / "in"])
    assert len(report.imported) == 4
    [duplicate] = report.duplicates
    assert Path(duplicate.path).name == "web_copy.webp"  # the later one in sorted order
    assert duplicate.within_batch and duplicate.existing_name == "web.webp"
    assert_consistent(store)


def test_lowered_pillow_limit_reaches_the_workers(
    tmp_path: Path, store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jpeg(tmp_path / "big.jpg", pattern(400, 300))
    small = write_jpeg(tmp_path / "small.jpg", pattern(100, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # limit = 2 × 50,000 pixels
    report = run(store, [path, small])
    assert [e.original_name for e in report.imported] == ["small.jpg"]
    [error] = report.errors
    assert "decompression bomb" in error.error and "120,000 pixels" in error.error


def test_unreadable_file(tmp_path: Path, store: CaseStore) -> None:
    if os.geteuid() == 0:
        pytest.skip(
            "running as root: root reads files whatever their permissions, so chmod 000 proves nothing"
        )
    good = good_files(tmp_path / "in")
    good["plain.png"].chmod(0)
    try:
        report = run(store, [tmp_path / "in"])
    finally:
        good["plain.png"].chmod(0o644)
    assert [Path(e.path).name for e in report.errors] == ["plain.png"]
    assert "permission denied" in report.errors[0].error
    assert len(report.imported) == 3


def test_progress_and_cancel(tmp_path: Path, store: CaseStore) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        write_jpeg(folder / f"img_{i:02d}.jpg", pattern(64 + i, 48))
    cancel = threading.Event()
    calls: list[tuple[int, int, str | None]] = []

    def progress(done: int, total: int, path: str | None) -> None:
        calls.append((done, total, path))
        if done == 3:
            cancel.set()

    report = run(store, [folder], progress=progress, cancel=cancel)
    assert report.cancelled and report.not_processed > 0
    assert len(report.imported) + report.not_processed == 30
    assert [c[0] for c in calls] == list(range(1, len(calls) + 1))
    assert all(c[1] == 30 for c in calls)
    assert store.evidence.count() == len(report.imported)
    assert_consistent(store)


def test_progress_reaches_total(tmp_path: Path, store: CaseStore) -> None:
    good_files(tmp_path / "in")
    calls: list[tuple[int, int, str | None]] = []
    run(store, [tmp_path / "in"], progress=lambda d, t, p: calls.append((d, t, p)))
    assert calls[-1][:2] == (4, 4)
    assert sorted(Path(str(p)).name for _, _, p in calls) == sorted(
        ["harbour.jpg", "plain.png", "scan.tif", "web.webp"]
    )


def test_in_process_mode_gives_the_same_result(tmp_path: Path, store: CaseStore) -> None:
    good_files(tmp_path / "in")
    outside = tmp_path / "outside"
    outside.mkdir()
    expected = broken_corpus(tmp_path / "in", outside=outside)
    report = run(store, [tmp_path / "in"], options=ImportOptions(workers=0))
    assert len(report.imported) == 4 and len(report.errors) == len(expected)
    assert_consistent(store)


def test_verify_decode_decodes_jpegs(tmp_path: Path, store: CaseStore) -> None:
    good = good_files(tmp_path / "in")
    report = run(store, [good["harbour.jpg"]], options=ImportOptions(workers=1, verify_decode=True))
    assert report.imported[0].metadata["thumbnail_source"] == "decoded"


def test_a_crashing_decoder_costs_only_its_file(tmp_path: Path, store: CaseStore) -> None:
    folder = tmp_path / "in"
    good_files(folder)
    write_jpeg(folder / "crash.jpg")
    sources, _ = collect_sources([folder])
    report = run_import(store, sources, options=ImportOptions(workers=2), worker=crashing_worker)
    assert sorted(e.original_name for e in report.imported) == [
        "harbour.jpg",
        "plain.png",
        "scan.tif",
        "web.webp",
    ]
    [error] = report.errors
    assert Path(error.path).name == "crash.jpg" and "decoder crash" in error.error
    assert_consistent(store)


def test_a_failing_store_write_leaves_no_file(
    tmp_path: Path, store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = good_files(tmp_path / "in")
    real_add = store.evidence.add

    def add(e: object) -> None:
        real_add(e)  # type: ignore[arg-type]
        if getattr(e, "original_name", "") == "plain.png":
            raise OSError("disk full")

    monkeypatch.setattr(store.evidence, "add", add)
    report = run(store, list(good.values()))
    assert [Path(e.path).name for e in report.errors] == ["plain.png"]
    assert "could not be stored" in report.errors[0].error and "disk full" in report.errors[0].error
    assert len(report.imported) == 3
    assert_consistent(store)


def test_a_failing_place_lookup_keeps_the_evidence(tmp_path: Path, store: CaseStore) -> None:
    good = good_files(tmp_path / "in")

    def broken(points: Sequence[GpsPoint]) -> list[Place | None]:
        raise RuntimeError("gazetteer data missing")

    sources, _ = collect_sources([good["harbour.jpg"]])
    report = run_import(store, sources, options=ImportOptions(workers=1), locate=broken)
    [evidence] = report.imported
    assert evidence.place is None and evidence.gps is not None
    assert any("gazetteer data missing" in n for n in evidence.metadata["notes"])


def test_stale_staging_of_a_dead_run_is_swept(tmp_path: Path, store: CaseStore) -> None:
    stale = store.path / STAGING_DIR / "import-999999999-abcd"
    stale.mkdir(parents=True)
    (stale / "0.original").write_bytes(b"half")
    good = good_files(tmp_path / "in")
    run(store, [good["plain.png"]])
    assert not stale.exists()
