"""What "Locate all" did: located, skipped (already located on this model), failed with reasons."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QVBoxLayout, QWidget

from geodesk.app import Application


class BatchSummaryDialog(QDialog):
    """What "Locate all" did: located, skipped (already located on this model), failed with reasons."""

    def __init__(self, app: Application, report: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Locate all")
        self.setObjectName("batchSummary")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(640, 360)
        summary = QLabel(self)
        summary.setWordWrap(True)
        summary.setTextFormat(Qt.TextFormat.PlainText)
        summary.setText(
            f"{report.total} image(s): {len(report.located)} located, {len(report.skipped)} skipped "
            f"(already located on this model), {len(report.failed)} failed"
            + (". Cancelled: run it again to locate the rest." if report.cancelled else ".")
        )
        self.failures = QListWidget(self)
        for failure in report.failed:
            self.failures.addItem(f"{app.evidence.name_of(failure['evidence'])}: {failure['error']}")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        if report.failed:
            note = "Failed (the other images were located; fix these and run it again):"
            layout.addWidget(QLabel(note, self))
            layout.addWidget(self.failures, 1)
        else:
            self.failures.hide()
            layout.addStretch(1)
            self.resize(560, 140)
        layout.addWidget(close)
