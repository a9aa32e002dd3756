"""The evaluation flows' scripted model: see tests/scripted.py (a test double for answers, not a model)."""

from tests.scripted import Rule, ScriptedModel

__all__ = ["Rule", "ScriptedModel"]
