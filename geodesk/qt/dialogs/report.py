"""Report…: build the case report, preview it as the reader will see it, then save it (HTML or PDF)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from geodesk.app import Application
from geodesk.app.controllers.deliverables import ReportDraft


class ReportDialog(QDialog):
    """Options, a preview of exactly what Save writes, and Save as HTML or PDF."""

    def __init__(self, app: Application, parent: QWidget | None = None) -> None:
        from PySide6.QtWebEngineCore import QWebEnginePage
        from PySide6.QtWebEngineWidgets import QWebEngineView

        from geodesk.qt.map_view import offline_profile

        super().__init__(parent)
        self.setWindowTitle("Case report")
        self.setObjectName("reportDialog")
        self.app = app
        self.draft: ReportDraft | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="geodesk-report-preview-")
        self.reference = QLineEdit()
        self.reference.setPlaceholderText("your case reference, for the cover")
        self.include_rejected = QCheckBox("List rejected clues too")
        self.redact_paths = QCheckBox("Leave out local file paths")
        self.build_button = QPushButton("Build preview")
        self.save_button = QPushButton("Save…")
        self.save_button.setEnabled(False)
        self.note = QLabel("Build the preview to see the report before saving it.")
        self.view = QWebEngineView()
        self.view.setPage(QWebEnginePage(offline_profile(), self.view))  # the offline profile: no network
        options = QHBoxLayout()
        for widget in (QLabel("Reference:"), self.reference, self.include_rejected, self.redact_paths,
                       self.build_button, self.save_button):
            options.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addLayout(options)
        layout.addWidget(self.note)
        layout.addWidget(self.view, 1)
        self.resize(1000, 760)
        self.build_button.clicked.connect(self.build)
        self.save_button.clicked.connect(self.ask_save)
        # A preview never outlives its case: another case opened clears it (and Save refuses it).
        app.state.events.case.connect(self._case_changed)
        self.finished.connect(self._closed)

    def _case_changed(self, *_values: object) -> None:
        case = self.app.state.case
        if self.draft is not None and (case is None or case.id != self.draft.case_id):
            self.draft = None
            self.view.setHtml("")
            self.save_button.setEnabled(False)
            self.note.setText("Another case is open: build the preview again for it.")

    def _closed(self, _code: int) -> None:
        self.app.state.events.case.disconnect(self._case_changed)
        self._scratch.cleanup()

    def build(self) -> bool:
        self.save_button.setEnabled(False)
        self.note.setText("Building the report…")
        return self.app.deliverables.build_report(
            self.show_draft, include_rejected=self.include_rejected.isChecked(),
            redact_paths=self.redact_paths.isChecked(), reference=self.reference.text().strip())

    def show_draft(self, draft: ReportDraft) -> None:
        self.draft = draft
        # setHtml stops at 2 MB and a report with its images is larger: the preview loads a file.
        preview = Path(self._scratch.name) / "report.html"
        preview.write_text(draft.html, encoding="utf-8")
        self.view.load(QUrl.fromLocalFile(str(preview)))
        self.note.setText(f"Preview of the report on {draft.items} evidence item(s); "
                          "Save writes exactly this.")
        self.save_button.setEnabled(True)

    def ask_save(self) -> None:
        if self.draft is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the report", str(Path.home() / "report.pdf"),
                                              "PDF (*.pdf);;HTML (*.html)")
        if path:
            self.save(Path(path))

    def save(self, out: Path) -> bool:
        if self.draft is None:
            self.app.ctx.say("Report", "build the preview for the open case first")
            return False
        pdf = None
        if out.suffix.lower() == ".pdf":
            from geodesk.qt.pdf import html_to_pdf

            pdf = html_to_pdf
        saved = self.app.deliverables.save_report(self.draft, out, pdf)
        if saved:
            self.note.setText(f"Saved {out}")
        return saved
