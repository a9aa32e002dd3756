"""The hint composer: every HintKind of the engine, turned into the next turn with one action.

It validates what each kind needs (a +QA needs its answer, a region note needs a drawn region, clue
feedback needs accepted or rejected clues) and emits a :class:`geodesk.domain.model.Hint`; the main
window sends it through the sessions service.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from geodesk.domain.model import Clue, ClueStatus, Hint, HintKind, Region

KIND_LABELS: dict[HintKind, str] = {
    HintKind.QUESTION: "Guiding question (+Q)",
    HintKind.QA: "Question with answer (+QA)",
    HintKind.PRIOR: "Prior region: it is in …",
    HintKind.EXCLUDE: "Exclusion: it is not in …",
    HintKind.CORRECT: "Correction: the prediction is wrong",
    HintKind.REGION: "Note on a drawn region",
    HintKind.CLUES: "Send accepted / rejected clues",
}
PLACEHOLDERS: dict[HintKind, str] = {
    HintKind.QUESTION: "e.g. Which side of the road do cars drive on?",
    HintKind.QA: "e.g. What script is on the sign?",
    HintKind.PRIOR: "e.g. Eastern Europe",
    HintKind.EXCLUDE: "e.g. Russia",
    HintKind.CORRECT: "optional: what is known, e.g. it is a coastal town",
    HintKind.REGION: "what is in the region, e.g. a bilingual street sign",
    HintKind.CLUES: "optional note to go with the clues",
}


class HintComposer(QWidget):
    hint_requested = Signal(object)  # Hint

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.region: Region | None = None
        self._clues: list[Clue] = []
        self.kind = QComboBox(self)
        self.kind.setObjectName("hintKind")
        for kind in HintKind:
            self.kind.addItem(KIND_LABELS.get(kind, kind.value), kind.value)
        self.text = QLineEdit(self)
        self.answer = QLineEdit(self)
        self.answer.setPlaceholderText("the answer, e.g. Latin with diacritics")
        self.region_label = QLabel("no region drawn (use Draw region on the image)", self)
        self.clues_label = QLabel(self)
        self.send_button = QPushButton("Send hint as next turn", self)
        self.send_button.setObjectName("sendHint")
        self.send_button.clicked.connect(self.send)
        self.text.returnPressed.connect(self.send)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c92a2a")

        form = QFormLayout()
        form.addRow("Kind", self.kind)
        form.addRow("Text", self.text)
        form.addRow("Answer", self.answer)
        form.addRow("Region", self.region_label)
        form.addRow("Clues", self.clues_label)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.send_button)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()

    def current_kind(self) -> HintKind:
        return HintKind(self.kind.currentData())

    def set_kind(self, kind: HintKind) -> None:
        self.kind.setCurrentIndex(self.kind.findData(kind.value))

    def set_region(self, region: Region | None) -> None:
        self.region = region
        self.region_label.setText(
            "no region drawn (use Draw region on the image)"
            if region is None
            else "x {0}–{2}, y {1}–{3}".format(*region.as_list())
        )

    def set_clues(self, clues: list[Clue]) -> None:
        self._clues = clues
        self._update_clue_label()

    def _judged(self) -> list[Clue]:
        return [
            c
            for c in self._clues
            if c.id is not None and c.status in (ClueStatus.ACCEPTED, ClueStatus.REJECTED, ClueStatus.EDITED)
        ]

    def _update_clue_label(self) -> None:
        judged = self._judged()
        accepted = sum(c.status != ClueStatus.REJECTED for c in judged)
        self.clues_label.setText(f"{accepted} accepted or edited, {len(judged) - accepted} rejected")

    def _kind_changed(self) -> None:
        kind = self.current_kind()
        self.text.setPlaceholderText(PLACEHOLDERS.get(kind, ""))
        self.answer.setEnabled(kind == HintKind.QA)
        self.message.clear()

    def build_hint(self) -> Hint:
        """The hint the form describes; ValueError with what to fix when it is incomplete."""
        kind = self.current_kind()
        text = self.text.text().strip()
        if (
            kind in (HintKind.QUESTION, HintKind.QA, HintKind.PRIOR, HintKind.EXCLUDE, HintKind.REGION)
            and not text
        ):
            raise ValueError("type the text of the hint first")
        if kind == HintKind.QA:
            answer = self.answer.text().strip()
            if not answer:
                raise ValueError("a question with answer (+QA) needs its answer")
            return Hint(kind, text, answer=answer)
        if kind == HintKind.REGION:
            if self.region is None:
                raise ValueError("draw a region on the image first (Draw region, then drag)")
            return Hint(kind, text, region=self.region)
        if kind == HintKind.CLUES:
            judged = self._judged()
            if not judged:
                raise ValueError("accept or reject some clues in the clue panel first")
            return Hint(kind, text, clue_ids=tuple(c.id for c in judged if c.id is not None))
        return Hint(kind, text)

    def send(self) -> None:
        try:
            hint = self.build_hint()
        except ValueError as exc:
            self.message.setText(str(exc))
            return
        self.message.clear()
        self.hint_requested.emit(hint)

    def clear(self) -> None:
        self.text.clear()
        self.answer.clear()
        self.message.clear()

    def show_error(self, message: str) -> None:
        self.message.setText(message)
