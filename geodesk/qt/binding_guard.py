"""A guard against a reference-count bug of the Qt bindings (shiboken6 6.12 on Python before 3.12).

In PySide6 6.12.0, every call of a Qt method that returns nothing (``QLabel.setText``,
``QPainter.drawLine``, ``QWidget.setEnabled``...) gives Python back ``None`` without the reference it
owes, so each such call takes one reference to ``None`` away for good. On Python 3.12 and later
``None`` is immortal and nothing happens; on 3.11 the count falls by one per call, and once the calls
outnumber the real references the interpreter frees ``None`` and aborts ("Fatal Python error:
none_dealloc"). A window that repaints a plot and refreshes its docks makes thousands of such calls
a minute, so the desktop app would abort after a while of clicking (and often at exit, when the
garbage collector drops the last real references).

:func:`guard_singletons` gives ``None``, ``True`` and ``False`` a reserve of references so large
(2**40) that the lost ones can never exhaust it, which is what Python 3.12 does by making them
immortal. It changes nothing else, does nothing on 3.12+, and is applied once when
:mod:`geodesk.qt` is imported.
"""

from __future__ import annotations

import ctypes
import sys

RESERVE = 2**40  # references added to each singleton: a trillion lost references before any harm
_guarded = False


def needs_guard() -> bool:
    """Singletons are reference-counted (not immortal) on this interpreter."""
    return sys.version_info < (3, 12) and sys.implementation.name == "cpython"


def guard_singletons() -> bool:
    """Add :data:`RESERVE` references to None, True and False once; True when it did (or had)."""
    global _guarded
    if _guarded or not needs_guard():
        return _guarded
    for singleton in (None, True, False):
        # CPython < 3.12 lays an object out as (ob_refcnt: Py_ssize_t, ob_type, ...): the count is the
        # first machine word at the object's address (id()).
        ctypes.c_ssize_t.from_address(id(singleton)).value += RESERVE
    _guarded = True
    return True
