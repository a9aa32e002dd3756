"""The data builders' scripted teacher: see tests/scripted.py (a test double for answers, not a model)."""

from tests.scripted import Rule as Script
from tests.scripted import ScriptedTeacher

__all__ = ["Script", "ScriptedTeacher"]
