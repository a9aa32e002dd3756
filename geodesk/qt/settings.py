"""Where the desktop app keeps what is Qt's own: the window layout, per workspace.

Engine choices, the tile folder and the recent cases are workspace settings (geodesk.store.settings,
``settings.json``, shared with the CLI). Only the dock layout and window geometry, which are Qt byte
blobs (``saveState``/``saveGeometry``), live in ``<workspace>/desktop.ini`` through QSettings; QSettings
writes through QSaveFile, so the file is replaced atomically. ``LAYOUT_VERSION`` is passed to
saveState/restoreState: bumping it when docks change makes old layouts be ignored, not misapplied.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

LAYOUT_VERSION = 2  # 2: the side columns take the corners (full height)


def layout_file(workspace: Path) -> Path:
    return Path(workspace) / "desktop.ini"


class LayoutSettings:
    def __init__(self, workspace: Path) -> None:
        path = layout_file(workspace)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.qsettings = QSettings(str(path), QSettings.Format.IniFormat)

    def window_layout(self) -> tuple[QByteArray | None, QByteArray | None]:
        geometry = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        return (
            geometry if isinstance(geometry, QByteArray) else None,
            state if isinstance(state, QByteArray) else None,
        )

    def set_window_layout(self, geometry: QByteArray, state: QByteArray) -> None:
        self.qsettings.setValue("window/geometry", geometry)
        self.qsettings.setValue("window/state", state)
        self.qsettings.sync()
