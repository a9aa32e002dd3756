"""The window's dock layout: fitting the screen, restoring a saved layout, and a PySide6 tab-bar fix."""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabBar

from geodesk.qt.settings import LAYOUT_VERSION, LayoutSettings


def fit_to_screen(window: QMainWindow, size: tuple[int, int]) -> None:
    """``size``, shrunk to the free area of the screen the window opens on (a 1366×768 laptop too)."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    free = screen.availableGeometry() if screen is not None else QRect(0, 0, *size)
    window.resize(min(size[0], free.width()), min(size[1], free.height()))


def restore_layout(window: QMainWindow, settings: LayoutSettings) -> bool:
    """Restore the saved geometry and dock state; False when there is none (or it does not fit)."""
    geometry, state = settings.window_layout()
    ok = geometry is None or window.restoreGeometry(geometry)
    return state is not None and window.restoreState(state, LAYOUT_VERSION) and ok


def hide_stale_tab_bars(window: QMainWindow) -> None:
    """Hide the dock tab bars Qt left behind. Each tabifyDockWidget after the first makes two tab
    bars for the same group (PySide6 6.12); the layout moves one and leaves the other where the
    window's edge was, drawn over whatever is there now. The one in use sits right under one of its
    docks; a bar that touches none of its docks is not in use."""
    docks = {d.windowTitle(): d for d in window.findChildren(QDockWidget)}
    for bar in window.findChildren(QTabBar):
        if bar.parent() is not window or bar.isHidden():
            continue
        group = [docks[t] for t in (bar.tabText(i) for i in range(bar.count())) if t in docks]
        visible = [d for d in group if d.isVisible() and not d.isFloating()]
        if visible and not any(_touches(bar.geometry(), d.geometry()) for d in visible):
            bar.hide()


def _touches(bar: QRect, dock: QRect, slack: int = 4) -> bool:
    """The tab bar lies along one edge of the dock (tabs are drawn below, above or beside it)."""
    grown = dock.adjusted(-slack, -slack, slack, slack)
    return grown.intersects(bar) and not dock.contains(bar.center())
