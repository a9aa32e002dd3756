"""The map dock: the offline map page (geodesk.report.map_page) in a QWebEngineView with a QWebChannel.

The page is built once in a worker and loaded from a file (pages over 2 MB cannot go through setHtml);
after that each update is a ``geodesk.setState(...)`` call with the escaped JSON document, so a new turn
redraws markers without reloading Leaflet. The case's map layers (which may be megabytes of features)
travel only when they changed; otherwise the document says ``"layers": null`` and the page keeps the
ones it drew, so a selection sends a few kilobytes. A URL request interceptor refuses anything that is not a
local file, ``qrc:`` or ``data:``: the page cannot reach the network even if some text slipped through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QFile, QIODevice, QObject, QUrl, Signal, Slot
from PySide6.QtWebChannel import QWebChannel
from PySide6.QtWebEngineCore import (
    QWebEnginePage,
    QWebEngineProfile,
    QWebEngineScript,
    QWebEngineSettings,
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
)
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QWidget

from geodesk.qt.workers import TaskContext, TaskRunner
from geodesk.report.map_page import MapState, safe_json, state_document, write_map_page

log = logging.getLogger(__name__)
ALLOWED_SCHEMES = {"file", "qrc", "data", "blob", "about"}


class MapBridge(QObject):
    """The object the page sees as ``geodeskBridge``; its slots are called from JavaScript."""

    clicked = Signal(float, float)
    turn_clicked = Signal(int)
    page_ready = Signal()

    @Slot(float, float)
    def mapClicked(self, lat: float, lon: float) -> None:  # noqa: N802 - JS-facing name
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            self.clicked.emit(lat, lon)

    @Slot(int)
    def turnClicked(self, index: int) -> None:  # noqa: N802 - JS-facing name
        self.turn_clicked.emit(index)

    @Slot()
    def pageReady(self) -> None:  # noqa: N802 - JS-facing name
        self.page_ready.emit()


class OfflineInterceptor(QWebEngineUrlRequestInterceptor):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.blocked: list[str] = []

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:  # noqa: N802 - Qt override
        url = info.requestUrl()
        if url.scheme() not in ALLOWED_SCHEMES:
            self.blocked.append(url.toString())
            info.block(True)


class _Page(QWebEnginePage):
    def javaScriptConsoleMessage(  # noqa: N802 - Qt override
        self, level: QWebEnginePage.JavaScriptConsoleMessageLevel, message: str, line: int, source: str
    ) -> None:
        log.debug("map page js [%s] %s:%s %s", level, source, line, message)


_profile: QWebEngineProfile | None = None
_interceptor: OfflineInterceptor | None = None


def offline_profile() -> QWebEngineProfile:
    """One off-the-record profile (no cache or cookies on disk) with the offline interceptor.

    It lives as long as the application: pages must be deleted before their profile, and views come
    and go (tests create many windows).
    """
    global _profile, _interceptor
    if _profile is None:
        from PySide6.QtCore import QCoreApplication

        _profile = QWebEngineProfile(QCoreApplication.instance())
        _interceptor = OfflineInterceptor(_profile)
        _profile.setUrlRequestInterceptor(_interceptor)
    return _profile


def release_offline_profile() -> None:
    """Delete the shared profile once no page uses it (application shutdown); a later view makes a new one.

    Qt WebEngine aborts at exit when a profile is destroyed while pages still refer to it, or when the
    profile outlives the web engine's teardown; callers delete their views first.
    """
    global _profile, _interceptor
    if _profile is not None:
        _profile.deleteLater()
        from PySide6.QtCore import QCoreApplication, QEvent

        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    _profile = None
    _interceptor = None


def _webchannel_script() -> QWebEngineScript:
    source = QFile(":/qtwebchannel/qwebchannel.js")
    if not source.open(QIODevice.OpenModeFlag.ReadOnly):
        raise RuntimeError("qwebchannel.js is missing from the Qt installation (PySide6 WebChannel)")
    script = QWebEngineScript()
    script.setSourceCode(bytes(source.readAll().data()).decode("utf-8"))
    script.setName("qwebchannel")
    script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentCreation)
    script.setWorldId(QWebEngineScript.ScriptWorldId.MainWorld)
    return script


class MapView(QWebEngineView):
    finding_clicked = Signal(float, float)
    turn_clicked = Signal(int)
    ready = Signal()
    failed = Signal(str)

    def __init__(self, runner: TaskRunner, page_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mapView")
        self._runner = runner
        self.page_path = page_path
        self.is_ready = False
        self._state = MapState()
        self._fit_next = True
        self._layers_on_page: tuple[dict[str, Any], ...] | None = None  # None: none sent to this page yet
        page = _Page(offline_profile(), self)
        page.scripts().insert(_webchannel_script())
        settings = page.settings()
        settings.setAttribute(QWebEngineSettings.WebAttribute.LocalContentCanAccessRemoteUrls, False)
        settings.setAttribute(QWebEngineSettings.WebAttribute.LocalContentCanAccessFileUrls, True)
        self.setPage(page)
        self.bridge = MapBridge(self)
        self.channel = QWebChannel(self)
        self.channel.registerObject("geodeskBridge", self.bridge)
        page.setWebChannel(self.channel)
        self.bridge.clicked.connect(self.finding_clicked)
        self.bridge.turn_clicked.connect(self.turn_clicked)
        self.loadFinished.connect(self._on_loaded)

    def build(self, tiles_dir: str = "", workspace: Path | None = None) -> None:
        """Build the page in a worker, then load it from its file; ``workspace``: draw its installed
        tile sets over the basemap (geodesk.services.map_tiles)."""
        self.is_ready = False
        tiles = Path(tiles_dir) if tiles_dir else None
        path = self.page_path

        def job(ctx: TaskContext) -> Path:
            from geodesk.services.map_tiles import page_tilesets

            tilesets = page_tilesets(workspace) if workspace is not None else []
            return write_map_page(path, None, tiles_dir=tiles, tilesets=tilesets)

        self._runner.start(job, "build map page", on_result=self._load_file, on_failed=self._build_failed)

    def _build_failed(self, message: str) -> None:
        self.failed.emit(f"the map cannot be shown: {message}")

    def _load_file(self, path: Any) -> None:
        self.load(QUrl.fromLocalFile(str(path)))

    def _on_loaded(self, ok: bool) -> None:
        if not ok:
            self.failed.emit("the map page did not load; see the log for the browser's message")
            return
        self.is_ready = True
        self._layers_on_page = None  # a (re)loaded page has drawn no layers
        self._push()
        self.ready.emit()

    def set_state(self, state: MapState, fit: bool = True) -> None:
        """Draw this state (``fit``: fit the view to it); the page is told only when it changed."""
        if state == self._state and not fit:
            return
        self._state = state
        self._fit_next = self._fit_next or fit
        if self.is_ready:
            self._push()

    def state(self) -> MapState:
        return self._state

    def _push(self) -> None:
        fit = "true" if self._fit_next else "false"
        self._fit_next = False
        document = state_document(self._state)
        if self._layers_on_page is not None and (
            self._layers_on_page is self._state.layers or self._layers_on_page == self._state.layers
        ):
            document["layers"] = None  # unchanged: the page keeps what it drew
        self._layers_on_page = self._state.layers
        self.page().runJavaScript(f"window.geodesk && window.geodesk.setState({safe_json(document)}, {fit});")

    def select_turn(self, index: int | None) -> None:
        if self.is_ready:
            arg = "null" if index is None else str(int(index))
            self.page().runJavaScript(f"window.geodesk && window.geodesk.selectTurn({arg}, true);")

    def run_js(self, code: str, callback: Callable[[Any], None]) -> None:
        self.page().runJavaScript(code, 0, callback)
