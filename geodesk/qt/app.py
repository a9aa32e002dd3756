"""Start the desktop app: ``geodesk`` with no command calls :func:`run_app`.

Only Qt is imported here; torch and transformers load later, inside workers, when a model is used, so
the window shows in well under two seconds. QtWebEngine must be imported before the QApplication is
created (it shares an OpenGL context with it), hence the import at the top of :func:`create_app`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from geodesk import __version__

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "qt"


def resolve_workspace(workspace: str | None) -> Path:
    """The CLI's rule: ``--workspace``, then ``$GEODESK_WORKSPACE``, then the per-user data folder."""
    from geodesk.store.locations import workspace_path

    return workspace_path(workspace)


def create_app(argv: list[str] | None = None) -> QApplication:
    from PySide6 import QtWebEngineWidgets  # noqa: F401  (must precede QApplication)

    os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--disable-gpu")
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("geodesk")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("geodesk")
    style = RESOURCES / "style.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    return app


def run_app(workspace: str | None = None) -> int:
    logging.basicConfig(level=os.environ.get("GEODESK_LOG", "WARNING"))
    app = create_app()
    from geodesk.qt.main_window import MainWindow

    path = resolve_workspace(workspace)
    try:
        window = MainWindow(path, defer_startup=True)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"geodesk: the workspace {path} cannot be used: {exc}\n")
        return 1
    window.show()
    if os.environ.get("GEODESK_EXIT_AFTER_SHOW"):  # start-up benchmark: exit once the window is shown
        from PySide6.QtCore import QTimer

        def shown() -> None:
            sys.stdout.write(f"geodesk: window shown (torch imported: {'torch' in sys.modules})\n")
            sys.stdout.flush()
            window.close()
            app.quit()

        QTimer.singleShot(0, shown)
    code = int(app.exec())
    # Pages must go before their web profile, or Qt WebEngine aborts on the way out.
    from PySide6.QtCore import QCoreApplication, QEvent

    from geodesk.qt.map_view import release_offline_profile

    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    release_offline_profile()
    return code
