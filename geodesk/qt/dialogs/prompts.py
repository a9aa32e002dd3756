"""The questions the app's actions ask the analyst (geodesk.app.actions.Prompts), as Qt dialogs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QWidget

from geodesk.app import Application
from geodesk.qt.docks.cases import CasesDock

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.heic *.heif);;All files (*)"


class DialogPrompts:
    def __init__(self, app: Application, parent: QWidget, cases: CasesDock) -> None:
        self.app = app
        self.parent = parent
        self.cases = cases
        self.dialog: QDialog | None = None  # the last dialog opened (tests find it here)

    def ask_case_title(self) -> str | None:
        title, ok = QInputDialog.getText(self.parent, "New case", "Title of the case:")
        return title if ok else None

    def ask_image_files(self) -> list[Path]:
        files, _ = QFileDialog.getOpenFileNames(self.parent, "Import images", str(Path.home()), IMAGE_FILTER)
        return [Path(f) for f in files]

    def ask_image_folder(self) -> Path | None:
        folder = QFileDialog.getExistingDirectory(self.parent, "Import a folder of images", str(Path.home()))
        return Path(folder) if folder else None

    def selected_case(self) -> str | None:
        return self.cases.selected_case()

    def show_replay(self) -> None:
        from geodesk.qt.dialogs.replay import ReplayDialog

        self._open(ReplayDialog(self.app, self.parent))

    def show_model_manager(self) -> None:
        from geodesk.qt.dialogs.models import ModelManagerDialog

        self._open(ModelManagerDialog(self.app, self.parent))

    def show_map_sources(self) -> None:
        from geodesk.qt.dialogs.map_sources import MapSourcesDialog

        self._open(MapSourcesDialog(self.app, self.parent))

    def show_settings(self) -> None:
        from geodesk.qt.dialogs.settings import SettingsDialog

        self._open(SettingsDialog(self.app, self.parent))

    def show_report(self) -> None:
        from geodesk.qt.dialogs.report import ReportDialog

        self._open(ReportDialog(self.app, self.parent))

    def ask_export_path(self) -> Path | None:
        path, chosen = QFileDialog.getSaveFileName(
            self.parent, "Export for GIS", str(Path.home() / "case.geojson"),
            "GeoJSON (*.geojson);;KML (*.kml);;KMZ (*.kmz);;CSV (*.csv)")
        if not path:
            return None
        out = Path(path)
        if not out.suffix:  # the filter's extension when the name has none
            out = out.with_suffix("." + chosen.split("*.")[-1].rstrip(")"))
        return out

    def _open(self, dialog: QDialog) -> None:
        self.dialog = dialog
        dialog.open()
