"""The name index kept on disk: the same answers as the built indexes, rebuilt when stale or broken."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from geodesk.geo import NameMatch, cache, default_gazetteer, name_store
from geodesk.geo.name_store import NameStore, NameStoreError, lookup, open_store, source_fingerprint

QUERIES = (
    "Bergen", "Paris", "合肥", "Deutschland", "CN-AH", "Bavaria", "Bayern", "Hefei City", "NYC",
    "Springfield", "Monaco", "Singapore", "Vatican", "San", "Lon", "Hefe", "Korea", "Georgia", "Kyiv",
    "Saigon", "München", "Washington", "Qwxzyville", "   ", "US", "Île-de-France", "Nei Mongol",
)  # fmt: skip


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cache") / "name-index.sqlite"
    open_store(path).close()
    return path


def _answers(answer: Callable[[str, int, str | None], list[NameMatch]]) -> list[list[dict[str, Any]]]:
    return [
        [m.as_dict() for m in answer(q, limit, kind)]
        for q in QUERIES
        for kind in (None, "country", "region", "city")
        for limit in (1, 10)
    ]


def test_the_store_answers_what_the_built_indexes_answer(store_path: Path) -> None:
    store = NameStore(store_path, source_fingerprint())
    try:
        assert _answers(store.lookup) == _answers(default_gazetteer().lookup)
        top = store.lookup("Bergen", limit=1)[0]
        assert (top.kind, top.name, top.country_code, top.region) == ("city", "Bergen", "NO", "Vestland")
        with pytest.raises(ValueError, match="kind must be one of"):
            store.lookup("Paris", kind="planet")
    finally:
        store.close()


@pytest.mark.slow  # a rebuild writes 48 MB
def test_a_store_built_from_other_data_is_refused_and_rebuilt(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "name-index.sqlite"
    path.write_bytes(store_path.read_bytes())
    with pytest.raises(NameStoreError, match="other data"):
        NameStore(path, "another fingerprint")
    monkeypatch.setattr(name_store, "source_fingerprint", lambda: "the gazetteer changed")
    store = open_store(path)  # rebuilt for the new fingerprint
    try:
        assert store.lookup("Bergen", limit=1)[0].country_code == "NO"
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        (stored,) = db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
    assert stored == "the gazetteer changed"


def test_the_fingerprint_follows_the_data_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "cities.json"
    data.write_text("[]")
    monkeypatch.setattr(name_store, "_data_files", lambda: [data])
    before = source_fingerprint()
    assert source_fingerprint() == before  # stable while nothing changes
    data.write_text('[{"name": "Bergen"}]')
    assert source_fingerprint() != before
    data.unlink()
    assert source_fingerprint() not in {before, ""}  # a missing file is part of the key too


@pytest.mark.slow  # each rebuild writes 48 MB
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_broken_store_is_rebuilt_and_answers(store_path: Path, tmp_path: Path, damage: str) -> None:
    path = tmp_path / "name-index.sqlite"
    good = store_path.read_bytes()
    broken = {
        "garbage": b"not a database at all" * 100,
        "truncated": good[: len(good) // 3],
        "empty": b"",
    }[damage]
    path.write_bytes(broken)
    expected = [m.as_dict() for m in default_gazetteer().lookup("Bergen", 5)]
    assert [m.as_dict() for m in lookup("Bergen", 5, path=path)] == expected
    assert path.stat().st_size == len(good)  # the rebuilt file replaced the broken one


def test_an_unwritable_cache_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(name_store, "atomic_write_bytes", refuse)
    path = tmp_path / "read-only" / "name-index.sqlite"
    assert lookup("Bergen", 1, path=path)[0].country_code == "NO"
    assert not path.exists()


def test_the_default_location_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    assert name_store.default_store_path() == tmp_path / name_store.FILE_NAME
