"""Helpers for Qt tests: evaluate JavaScript in a web view and wait for its answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pytestqt.qtbot import QtBot

from geodesk.qt.map_view import MapView


def js(qtbot: QtBot, view: MapView, code: str, timeout: int = 10000) -> Any:
    """The value of ``code`` (an expression) in the page; JSON-decoded when it is a JSON string."""
    box: list[Any] = []
    view.run_js(code, box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=timeout)
    return box[0]


def summary(qtbot: QtBot, view: MapView) -> dict[str, Any]:
    value = js(
        qtbot, view, "window.geodesk && window.geodesk.ready ? JSON.stringify(geodesk.summary()) : 'null'"
    )
    result: dict[str, Any] = json.loads(value) or {}
    return result


def wait_summary(
    qtbot: QtBot, view: MapView, predicate: Callable[[dict[str, Any]], bool], timeout: int = 15000
) -> dict[str, Any]:
    """Poll the page's summary until ``predicate`` holds; returns the summary that satisfied it."""
    seen: list[dict[str, Any]] = []

    def check() -> bool:
        s = summary(qtbot, view)
        seen.append(s)
        return bool(s) and predicate(s)

    qtbot.waitUntil(check, timeout=timeout)
    return seen[-1]
