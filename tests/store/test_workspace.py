from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from geodesk.store import CaseStore, StoreError, Workspace
from geodesk.store.workspace import new_case_id


def test_create_case_makes_a_self_describing_folder(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    case = ws.create_case("  Harbour photos  ")
    folder = Path(case.path)
    assert folder.parent == ws.cases_dir
    assert re.fullmatch(r"c\d{8}-[0-9a-z]{6}", case.id)
    assert case.title == "Harbour photos"
    assert sorted(p.name for p in folder.iterdir()) == [
        "case.db",
        "case.json",
        "evidence",
        "exports",
        "thumbs",
    ]
    described = json.loads((folder / "case.json").read_text())
    assert described == {"id": case.id, "title": case.title, "created_at": case.created_at.isoformat()}
    with CaseStore.open(folder) as store:
        assert store.case == case
        assert [e.action for e in store.audit.entries()] == ["case.create"]


def test_case_ids_sort_by_day_and_do_not_repeat() -> None:
    ids = {new_case_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert len({i[:9] for i in ids}) <= 2  # same day (or midnight in between)


def test_list_and_resolve(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    assert ws.list_cases() == []
    with pytest.raises(LookupError, match="has no cases yet; create one"):
        ws.resolve_case("anything")
    paris = ws.create_case("Paris")
    paris2 = ws.create_case("Paris at night")
    lyon = ws.create_case("Lyon market")
    assert {c.id for c in ws.list_cases()} == {paris.id, paris2.id, lyon.id}
    assert ws.resolve_case(lyon.id) == lyon
    assert ws.resolve_case("lyon") == lyon
    assert ws.resolve_case("paris") == paris  # the exact title wins among prefix matches
    assert ws.resolve_case("Paris at") == paris2
    assert ws.resolve_case(paris2.id[:-1]) == paris2  # a unique id prefix works too
    with pytest.raises(LookupError, match=r"'Par' matches several cases: ") as several:
        ws.resolve_case("Par")
    assert "(Paris)" in str(several.value) and "(Paris at night)" in str(several.value)
    with pytest.raises(LookupError, match=r"no case matches 'Berlin'; the cases are: .*Lyon market"):
        ws.resolve_case("Berlin")
    with pytest.raises(LookupError, match="give a case id"):
        ws.resolve_case("  ")
    with ws.open_case("lyon") as store:
        assert store.case == lyon
    with ws.open_case(lyon) as store:
        assert store.case == lyon


def test_titles_are_validated(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    with pytest.raises(ValueError, match="needs a title"):
        ws.create_case("   ")
    with pytest.raises(ValueError, match="at most 200"):
        ws.create_case("x" * 201)
    with pytest.raises(ValueError, match="one line"):
        ws.create_case("two\nlines")
    assert ws.list_cases() == []


def test_failed_create_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace(tmp_path)

    def no_space(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("geodesk.store.case_store.write_json_atomic", no_space)
    with pytest.raises(OSError, match="No space"):
        ws.create_case("Doomed")
    assert list(ws.cases_dir.iterdir()) == []


def test_listing_skips_staging_and_damaged_folders(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ws = Workspace(tmp_path)
    good = ws.create_case("Good")
    (ws.cases_dir / ".new-c1-abcd").mkdir()
    damaged = ws.cases_dir / "c20200101-broken"
    damaged.mkdir()
    (damaged / "case.json").write_text("{not json")
    assert ws.list_cases() == [good]
    assert "damaged" in caplog.text


def test_workspace_must_be_a_folder(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        Workspace(file)


def test_opening_a_folder_that_is_not_a_case(tmp_path: Path) -> None:
    from geodesk.store import NotACaseError

    with pytest.raises(NotACaseError, match="not a geodesk case folder"):
        CaseStore.open(tmp_path)
