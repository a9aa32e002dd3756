"""Print an HTML document to PDF with Qt WebEngine (the engine the app's map already uses).

The page loads from a temporary file (``setHtml`` stops at 2 MB, and a report with inlined images is
larger) in the app's off-the-record profile, whose interceptor refuses every network scheme, and is
printed with ``printToPdf`` at A4. Works offscreen: printing does not need a window on screen.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRINT_TIMEOUT_S = 300


_application: object = None  # the QApplication this module made, kept alive for later prints


def _ensure_application() -> None:
    """A QApplication for printing from the command line; the app's own one when it runs."""
    global _application
    from PySide6 import QtWebEngineWidgets  # noqa: F401  (must precede QApplication)
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--disable-gpu")
        _application = QApplication(["geodesk"])


class PdfError(Exception):
    """Qt WebEngine could not print the document."""


def html_to_pdf(html: str, timeout_s: float = PRINT_TIMEOUT_S) -> bytes:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QMarginsF, QTimer, QUrl
    from PySide6.QtGui import QPageLayout, QPageSize
    from PySide6.QtWebEngineCore import QWebEnginePage

    from geodesk.qt.map_view import offline_profile

    _ensure_application()
    with tempfile.TemporaryDirectory(prefix="geodesk-pdf-") as scratch:
        source, target = Path(scratch) / "report.html", Path(scratch) / "report.pdf"
        source.write_text(html, encoding="utf-8")
        page = QWebEnginePage(offline_profile())
        loop = QEventLoop()
        outcome: dict[str, bool] = {}

        def loaded(ok: bool) -> None:
            if not ok:
                outcome["loaded"] = False
                loop.quit()
                return
            layout = QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                 QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter)
            page.printToPdf(str(target), layout)

        def printed(_path: str, ok: bool) -> None:
            outcome["printed"] = ok
            loop.quit()

        page.loadFinished.connect(loaded)
        page.pdfPrintingFinished.connect(printed)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        page.load(QUrl.fromLocalFile(str(source)))
        loop.exec()
        # Delete the page now, not at exit: Qt WebEngine warns (and can crash) when the profile is
        # released while a page still refers to it.
        page.deleteLater()
        from PySide6.QtCore import QCoreApplication, QEvent

        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        if outcome.get("loaded") is False:
            raise PdfError("Qt WebEngine could not load the report to print it")
        if not outcome.get("printed") or not target.is_file():
            raise PdfError(f"Qt WebEngine did not print the report within {timeout_s:.0f} s")
        return target.read_bytes()
