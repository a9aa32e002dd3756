"""Untrusted text (file names, EXIF, model answers) in Qt widgets: always shown as plain text.

QLabel, tooltips and message boxes guess "rich text" when a string looks like HTML
(``Qt.mightBeRichText``), so a file named ``<img src=...>.jpg`` or a model answer with markup would be
rendered. Labels get ``Qt.TextFormat.PlainText``; tooltips, which have no format switch, get the text
HTML-escaped inside a pre-wrap paragraph, which shows every character as it is.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


def plain_tip(text: str) -> str:
    """A tooltip that shows ``text`` exactly, markup included."""
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>" if text else ""


def plain_label(text: str = "", parent: QWidget | None = None, *, wrap: bool = True) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    label.setText(text)
    return label
