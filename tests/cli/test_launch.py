"""The app launcher's rule for Qt WebEngine's sandbox when geodesk runs as root."""

from __future__ import annotations

from geodesk.cli._launch import ROOT_NOTE, webengine_flags


def test_root_turns_the_sandbox_off_and_says_why() -> None:
    assert webengine_flags(0, {}) == ("--disable-gpu --no-sandbox", ROOT_NOTE)
    assert webengine_flags(0, {"QTWEBENGINE_CHROMIUM_FLAGS": "--foo"}) == ("--foo --no-sandbox", ROOT_NOTE)


def test_flags_already_without_sandbox_and_ordinary_users_are_left_alone() -> None:
    assert webengine_flags(0, {"QTWEBENGINE_CHROMIUM_FLAGS": "--no-sandbox --disable-gpu"}) == (None, None)
    assert webengine_flags(1000, {}) == (None, None)
    assert webengine_flags(1000, {"QTWEBENGINE_CHROMIUM_FLAGS": "--x"}) == (None, None)
