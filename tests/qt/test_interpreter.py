"""The interpreter settings of the desktop app (geodesk/qt/interpreter.py)."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator

import pytest

from geodesk.qt.interpreter import SWITCH_INTERVAL_S, settle, share_the_gil


class _Node:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process's collector as it found it


def test_a_settle_leaves_the_objects_alive_then_out_of_later_passes(thawed: None) -> None:
    node = _Node()
    settle()
    assert gc.get_freeze_count() > 0
    alive = weakref.ref(node)
    del node
    gc.collect()
    assert alive() is not None  # frozen: a plain pass does not walk it


def test_a_later_settle_frees_what_an_earlier_one_froze_and_is_garbage_now(thawed: None) -> None:
    node = _Node()  # the previous case's objects, alive when the app settled
    settle()
    alive = weakref.ref(node)
    del node  # that case closed: its objects are cyclic garbage now
    settle()  # the next case opened
    assert alive() is None


def test_the_switch_interval_is_shortened() -> None:
    before = sys.getswitchinterval()
    try:
        share_the_gil()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    finally:
        sys.setswitchinterval(before)
