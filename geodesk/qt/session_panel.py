"""The session panel: start a direct or clue session, watch the answer stream in, stop it, read the
parsed prediction as a card and the conversation so far.

All model text is shown as text: the live stream goes into a QPlainTextEdit, and the card and the
conversation are HTML built from ``html.escape``-d strings, in widgets that load no external resources.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from geodesk.domain.model import CAVEAT_TEXT, Prediction, SessionMode, Turn, TurnStatus
from geodesk.report.history import describe_hint

UNTRAINED_BADGE = "UNTRAINED trial model: its answers are not geolocation evidence"
SYNTHETIC_BADGE = "SYNTHETIC demo model: trained on GeoSynth scenes only, not for casework"
ACTIVE_MODEL = ""  # the model combo's item for "the workspace's active model"
MAX_SAMPLES = 16


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def prediction_card_html(
    prediction: Prediction | None, turn_index: int | None = None, caveat: str | None = None
) -> str:
    """The prediction card; every value escaped. ``caveat``: the session model's (ModelIdentity.caveat),
    whose sentence heads the card."""
    if prediction is None:
        return "<p><i>No prediction yet.</i></p>"
    badge = CAVEAT_TEXT.get(caveat or "")
    head = f"<p style='color: #c92a2a'><b>⚠ {_e(badge)}</b></p>" if badge else ""
    rows = [
        ("Country", prediction.country or "—"),
        ("Region", prediction.region or "—"),
        ("City", prediction.city or "—"),
        (
            "Coordinates",
            "—"
            if prediction.lat is None or prediction.lon is None
            else f"{prediction.lat:.5f}, {prediction.lon:.5f}",
        ),
        ("Valid answer", "yes" if prediction.valid else "no: " + "; ".join(prediction.problems)),
    ]
    # turn_index is the stored index (from 0); people count turns from 1 (Turn.number).
    title = "Prediction" if turn_index is None else f"Prediction, turn {turn_index + 1}"
    out = [f"{head}<h3>{_e(title)}</h3><table cellspacing='2'>"]
    out += [f"<tr><td><b>{_e(k)}</b></td><td>{_e(v)}</td></tr>" for k, v in rows]
    out.append("</table>")
    if prediction.candidates:
        out.append("<p><b>Candidates</b></p><ul>")
        for c in prediction.candidates:
            names = ", ".join(n for n in (c.city, c.region, c.country) if n) or f"{c.lat:.3f}, {c.lon:.3f}"
            out.append(f"<li>{_e(names)}: {c.share:.0%}, spread {c.spread_km:.0f} km</li>")
        out.append("</ul>")
    return "".join(out)


def conversation_html(turns: list[Turn]) -> str:
    parts = []
    for turn in sorted(turns, key=lambda t: t.index):
        hints = "".join(f"<div class='hint'>hint: {_e(describe_hint(h))}</div>" for h in turn.hints)
        status = "" if turn.status == TurnStatus.DONE else f" <i>({_e(turn.status.value)})</i>"
        error = f"<div style='color:#c92a2a'>{_e(turn.error)}</div>" if turn.error else ""
        parts.append(
            f"<div style='margin-bottom:8px'><b>Turn {turn.number}</b>{status}{hints}"
            f"<div style='color:#555;white-space:pre-wrap'>{_e(turn.prompt)}</div>"
            f"<div style='white-space:pre-wrap'>{_e(turn.raw_answer)}</div>{error}</div>"
        )
    return "".join(parts) or "<p><i>No turns yet.</i></p>"


def _set_html(browser: QTextBrowser, text: str) -> None:
    """Lay the HTML out again only when it changed: a selection step that leaves the card or the
    conversation as it was costs no layout on the UI thread."""
    if browser.property("shownHtml") != text:
        browser.setProperty("shownHtml", text)
        browser.setHtml(text)


class SessionPanel(QWidget):
    start_requested = Signal(str)  # SessionMode value
    stop_requested = Signal()
    session_chosen = Signal(int)  # session id
    model_chosen = Signal(str)  # NAME@VERSION, or ACTIVE_MODEL
    replay_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_label = QLabel("No model", self)
        self.model_label.setTextFormat(Qt.TextFormat.PlainText)
        self.model_label.setWordWrap(True)
        self.model_combo = QComboBox(self)
        self.model_combo.setObjectName("sessionModel")
        self.model_combo.setToolTip("The model new sessions run on (the workspace's active one by default)")
        self.model_combo.addItem("Active model", ACTIVE_MODEL)
        self.model_combo.activated.connect(
            lambda row: self.model_chosen.emit(str(self.model_combo.itemData(row) or ACTIVE_MODEL))
        )
        self.samples = QSpinBox(self)
        self.samples.setObjectName("samples")
        self.samples.setRange(0, MAX_SAMPLES)
        self.samples.setPrefix("candidates: ")
        self.samples.setToolTip(
            "Draw K extra sampled answers per turn and cluster them into candidate places with their "
            "shares (as --samples K); 0 gives the single greedy answer. Each sample costs one more answer."
        )
        self.replay_button = QPushButton("Replay…", self)
        self.replay_button.setObjectName("replaySession")
        self.replay_button.setToolTip(
            "Run this session's user turns again on a model and compare the answers"
        )
        self.replay_button.clicked.connect(self.replay_requested)
        self.mode = QComboBox(self)
        self.mode.addItem("Direct answer", SessionMode.DIRECT.value)
        self.mode.addItem("Clues first", SessionMode.CLUES.value)
        self.sessions = QComboBox(self)
        self.sessions.setToolTip("Earlier sessions on this image")
        self.sessions.activated.connect(self._session_activated)
        self.start_button = QPushButton("Start session", self)
        self.start_button.setObjectName("startSession")
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(lambda: self.start_requested.emit(self.mode.currentData()))
        self.stop_button.clicked.connect(self.stop_requested)
        row = QHBoxLayout()
        row.addWidget(self.mode)
        row.addWidget(self.start_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.samples)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.sessions, 2)
        model_row.addWidget(self.replay_button)

        self.card = QTextBrowser(self)
        self.card.setObjectName("predictionCard")
        self.card.setOpenLinks(False)
        self.stream = QPlainTextEdit(self)
        self.stream.setObjectName("streamText")
        self.stream.setReadOnly(True)
        self.stream.setPlaceholderText("The model's answer appears here as it is written.")
        self.conversation = QTextBrowser(self)
        self.conversation.setObjectName("conversation")
        self.conversation.setOpenLinks(False)
        self.status = QLabel(self)
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # errors quote model and server text
        self.status.setWordWrap(True)

        splitter = QSplitter(self)
        splitter.setOrientation(splitter.orientation().Vertical)
        splitter.addWidget(self.card)
        splitter.addWidget(self.stream)
        splitter.addWidget(self.conversation)
        splitter.setStretchFactor(0, 3)  # the prediction card (with its candidates) gets the most room
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 3)
        self.card.setMinimumHeight(120)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addLayout(row)
        layout.addLayout(model_row)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        self.show_prediction(None)

    def set_model(self, description: str, untrained: bool, synthetic: bool = False) -> None:
        badge = UNTRAINED_BADGE if untrained else SYNTHETIC_BADGE if synthetic else ""
        self.model_label.setText(description + (f"\n⚠ {badge}" if badge else ""))
        self.model_label.setStyleSheet("color: #c92a2a; font-weight: bold" if badge else "")

    def set_models(self, refs: list[tuple[str, str]], chosen: str | None) -> None:
        """Installed models as (NAME@VERSION, label); ``chosen`` None selects the active model."""
        self.model_combo.clear()
        self.model_combo.addItem("Active model", ACTIVE_MODEL)
        for ref, label in refs:
            self.model_combo.addItem(label, ref)
        row = self.model_combo.findData(chosen) if chosen else 0
        self.model_combo.setCurrentIndex(max(row, 0))

    def set_available(self, ok: bool, reason: str = "") -> None:
        self.start_button.setEnabled(ok)
        self.start_button.setToolTip("" if ok else reason)

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        if running:
            self.stream.clear()

    def append_token(self, text: str) -> None:
        cursor = self.stream.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)  # plain text: markup in a model answer stays visible as characters
        self.stream.setTextCursor(cursor)

    def show_prediction(
        self, prediction: Prediction | None, turn_index: int | None = None, caveat: str | None = None
    ) -> None:
        _set_html(self.card, prediction_card_html(prediction, turn_index, caveat))

    def show_turns(self, turns: list[Turn], caveat: str | None = None) -> None:
        """The conversation and the last answer's card; ``caveat``: the session model's."""
        _set_html(self.conversation, conversation_html(turns))
        done = [t for t in turns if t.status == TurnStatus.DONE]
        last = max(done, key=lambda t: t.index) if done else None
        self.show_prediction(
            None if last is None else last.prediction, None if last is None else last.index, caveat
        )

    def set_sessions(self, items: list[tuple[int, str]], current: int | None) -> None:
        self.sessions.clear()
        for session_id, label in items:
            self.sessions.addItem(label, session_id)
        if current is not None:
            self.sessions.setCurrentIndex(self.sessions.findData(current))

    def _session_activated(self, row: int) -> None:
        session_id = self.sessions.itemData(row)
        if session_id is not None:
            self.session_chosen.emit(int(session_id))

    def show_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c92a2a" if error else "")
