"""The finding editor (point, radius, status, reasoning, history) and the evidence metadata panel."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geodesk.domain.model import Evidence, Finding, FindingStatus
from geodesk.qt.text import plain_tip

DEFAULT_RADIUS_KM = 25.0
CLICK_HINT = "Click the map to propose the point (or type it); Save finding records a new version."


class FindingEditor(QWidget):
    """Emits ``save_requested(lat, lon, radius_km, status, reasoning)``; a controller stores a new version.

    The form starts empty (there is no finding until the analyst gives a point: never 0, 0); a map
    click only fills the point in (:meth:`set_point`), Save records it.
    """

    save_requested = Signal(float, float, float, str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lat = QLineEdit(self)
        self.lat.setObjectName("findingLat")
        self.lat.setPlaceholderText("latitude")
        self.lon = QLineEdit(self)
        self.lon.setObjectName("findingLon")
        self.lon.setPlaceholderText("longitude")
        self.radius = QDoubleSpinBox(self)
        self.radius.setRange(0, 20000)
        self.radius.setDecimals(1)
        self.radius.setValue(DEFAULT_RADIUS_KM)
        self.radius.setSuffix(" km")
        self.status = QComboBox(self)
        for s in FindingStatus:
            self.status.addItem(s.value, s.value)
        self.reasoning = QPlainTextEdit(self)
        self.reasoning.setPlaceholderText("Why you conclude this: what you checked, which clues support it.")
        self.save_button = QPushButton("Save finding", self)
        self.save_button.setObjectName("saveFinding")
        self.save_button.clicked.connect(self.save)
        self.hint = QLabel(CLICK_HINT, self)
        self.hint.setTextFormat(Qt.TextFormat.PlainText)
        self.hint.setWordWrap(True)
        self.history = QListWidget(self)
        self.history.setObjectName("findingHistory")

        point = QHBoxLayout()
        point.addWidget(self.lat)
        point.addWidget(self.lon)
        form = QFormLayout()
        form.addRow("Lat, lon", point)
        form.addRow("Radius", self.radius)
        form.addRow("Status", self.status)
        form.addRow("Reasoning", self.reasoning)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.save_button)
        layout.addWidget(self.hint)
        layout.addWidget(QLabel("History", self))
        layout.addWidget(self.history, 1)
        self.setEnabled(False)

    def set_point(self, lat: float, lon: float) -> None:
        self.lat.setText(f"{lat:.6f}")
        self.lon.setText(f"{lon:.6f}")
        self.hint.setText("Point proposed from the map: Save finding to record it.")

    def point(self) -> tuple[float, float] | None:
        try:
            return float(self.lat.text().strip()), float(self.lon.text().strip())
        except ValueError:
            return None

    def show_finding(self, current: Finding | None, history: list[Finding] | tuple[Finding, ...]) -> None:
        """The current version in the form (an empty form when there is none) and every version."""
        if current is not None:
            self.set_point(current.lat, current.lon)
            self.radius.setValue(current.radius_km)
            self.status.setCurrentIndex(self.status.findData(current.status.value))
            self.reasoning.setPlainText(current.reasoning)
        else:
            self.lat.clear()
            self.lon.clear()
            self.radius.setValue(DEFAULT_RADIUS_KM)
            self.status.setCurrentIndex(0)
            self.reasoning.clear()
        self.hint.setText(CLICK_HINT)
        self.history.clear()
        for f in sorted(history, key=lambda f: f.version, reverse=True):
            when = "" if f.created_at is None else f.created_at.strftime("%Y-%m-%d %H:%M")
            self.history.addItem(
                f"v{f.version} {when}  {f.lat:.5f}, {f.lon:.5f} ±{f.radius_km:g} km  {f.status.value}"
                + (f" — {f.reasoning[:80]}" if f.reasoning else "")
            )

    def save(self) -> None:
        point = self.point()
        if point is None:
            self.hint.setText("Give the point first: click the map, or type latitude and longitude.")
            return
        self.save_requested.emit(
            point[0],
            point[1],
            self.radius.value(),
            str(self.status.currentData()),
            self.reasoning.toPlainText().strip(),
        )


class MetadataPanel(QTreeWidget):
    """Evidence facts first (GPS with its place, capture time with offset, camera), then raw metadata."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("metadataPanel")
        self.setColumnCount(2)
        self.setHeaderLabels(["Field", "Value"])
        # Values stay readable in a narrow column: the field names are short, the values elide on the
        # right and their tooltips hold the whole text.
        self.header().setStretchLastSection(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)

    def show_evidence(self, evidence: Evidence | None) -> None:
        self.clear()
        if evidence is None:
            return
        place = evidence.place
        where = "—"
        if place is not None:
            where = ", ".join(n for n in (place.city, place.region, place.country) if n) or "—"
            if place.distance_km is not None:
                where += f" ({place.distance_km:.1f} km from the place)"
        facts = [
            ("File", evidence.original_name),
            ("SHA-256", evidence.sha256),
            (
                "Size",
                f"{evidence.size_bytes:,} bytes, {evidence.width}×{evidence.height} px, {evidence.format}",
            ),
            (
                "GPS",
                "none in the file"
                if evidence.gps is None
                else f"{evidence.gps.lat:.6f}, {evidence.gps.lon:.6f}"
                + ("" if evidence.gps.alt is None else f", {evidence.gps.alt:.0f} m"),
            ),
            ("Place", where),
            ("Taken", evidence.taken_at or "unknown"),
            ("Camera", evidence.camera or "unknown"),
            ("Orientation", str(evidence.orientation)),
            ("Imported", evidence.imported_at.isoformat(timespec="seconds")),
        ]
        for key, value in facts:
            QTreeWidgetItem(self, [key, value]).setToolTip(1, plain_tip(value))
        raw = QTreeWidgetItem(self, ["Metadata", f"{len(evidence.metadata)} fields"])
        _fill(raw, evidence.metadata)
        self.resizeColumnToContents(0)
        self.setColumnWidth(0, min(self.columnWidth(0), 110))


def _fill(parent: QTreeWidgetItem, value: object) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            child = QTreeWidgetItem(parent, [str(k), "" if isinstance(v, (dict, list)) else _short(v)])
            child.setToolTip(1, plain_tip(child.text(1)))
            if isinstance(v, (dict, list)):
                _fill(child, v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            child = QTreeWidgetItem(parent, [str(i), "" if isinstance(v, (dict, list)) else _short(v)])
            if isinstance(v, (dict, list)):
                _fill(child, v)


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:200] + "…"
