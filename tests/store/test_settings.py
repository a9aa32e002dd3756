from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geodesk.store import Settings, SettingsError, Workspace
from geodesk.store.settings import (
    DTYPES,
    QUANTIZATIONS,
    SETTINGS_VERSION,
    migrate_settings,
    settings_from_json,
)


def test_defaults_when_missing(tmp_path: Path) -> None:
    assert Workspace(tmp_path).load_settings() == Settings()


@settings(max_examples=30, deadline=None)
@given(
    s=st.builds(
        Settings,
        backend=st.text(max_size=10),
        device=st.text(max_size=10),
        dtype=st.sampled_from(DTYPES),
        quantization=st.sampled_from(QUANTIZATIONS),
        remote_url=st.none() | st.text(max_size=20),
        remote_model=st.none() | st.text(max_size=20),
        tile_folder=st.none() | st.text(max_size=20),
        recent_cases=st.lists(st.text(max_size=12), max_size=4).map(tuple),
    )
)
def test_save_load_round_trip(tmp_path_factory: pytest.TempPathFactory, s: Settings) -> None:
    ws = Workspace(tmp_path_factory.mktemp("settings"))
    ws.save_settings(s)
    assert ws.load_settings() == s
    assert [p.name for p in ws.path.iterdir()] == ["settings.json"]  # no temp file left behind


def test_unversioned_file_is_migrated_and_unknown_keys_kept(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.settings_path.write_text(json.dumps({"dtype": "float16", "plugin.colour": "teal"}))
    loaded = ws.load_settings()
    assert loaded.dtype == "fp16"  # migrated to the one precision vocabulary
    assert loaded.version == SETTINGS_VERSION
    assert loaded.extra == {"plugin.colour": "teal"}
    ws.save_settings(loaded)
    written = json.loads(ws.settings_path.read_text())
    assert written["plugin.colour"] == "teal"
    assert written["version"] == SETTINGS_VERSION


def test_newer_or_broken_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="written by a newer geodesk"):
        migrate_settings({"version": SETTINGS_VERSION + 1})
    with pytest.raises(SettingsError, match="'device' must be str"):
        settings_from_json({"version": 1, "device": 3})
    with pytest.raises(SettingsError, match="dtype must be one of"):
        settings_from_json({"version": 1, "dtype": "int4"})
    with pytest.raises(SettingsError, match="whole number"):
        settings_from_json({"version": "one"})
    ws = Workspace(tmp_path)
    ws.settings_path.write_text("{oops")
    with pytest.raises(SettingsError, match=r"not valid JSON \(line 1"):
        ws.load_settings()


def test_version_1_precision_names_become_the_one_vocabulary() -> None:
    """Settings version 1 spelled bfloat16 / 4bit; the CLI and backends say bf16 / nf4."""
    from geodesk.domain.precision import DTYPES, QUANTIZATIONS

    settings = settings_from_json({"version": 1, "dtype": "bfloat16", "quantization": "4bit"})
    assert (settings.dtype, settings.quantization, settings.version) == ("bf16", "nf4", SETTINGS_VERSION)
    eight_bit = settings_from_json({"version": 1, "dtype": "float32", "quantization": "8bit"})
    assert (eight_bit.dtype, eight_bit.quantization) == ("fp32", "int8")
    assert settings.dtype in DTYPES and settings.quantization in QUANTIZATIONS
def test_the_remote_api_key_stays_out_of_settings_json(tmp_path: Path) -> None:
    import json
    import stat

    from geodesk.store.settings import REMOTE_KEY_FILE, Settings, load_settings, save_settings

    path = tmp_path / "settings.json"
    save_settings(path, Settings(backend="remote", remote_api_key="s3cret"))
    assert "s3cret" not in path.read_text(encoding="utf-8")
    key_file = tmp_path / REMOTE_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_settings(path).remote_api_key == "s3cret"
    # A settings.json from before keeps working, and the key moves out on the next save.
    key_file.unlink()
    path.write_text(json.dumps({"version": 1, "remote_api_key": "older-k3y"}), encoding="utf-8")
    loaded = load_settings(path)
    assert loaded.remote_api_key == "older-k3y"
    save_settings(path, loaded)
    assert "older-k3y" not in path.read_text(encoding="utf-8")
    assert key_file.read_text(encoding="utf-8") == "older-k3y\n"
    save_settings(path, Settings())
    assert not key_file.exists() and load_settings(path).remote_api_key is None
