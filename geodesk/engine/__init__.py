"""Model sessions: the prompt protocol, answer parsing, model packages and backends.

This package stays light to import (no torch, no transformers): the prompt protocol and the parser
are plain Python, and backends import their heavy libraries inside their own modules.
"""

from geodesk.engine.parsing import AnswerSource, NameNormalizer, ParsedAnswer, Problem, parse_answer
from geodesk.engine.prompts import CLUE_CATEGORIES, IMAGE_PLACEHOLDER, PROTOCOL_VERSION, build_messages

__all__ = [
    "CLUE_CATEGORIES",
    "IMAGE_PLACEHOLDER",
    "PROTOCOL_VERSION",
    "AnswerSource",
    "NameNormalizer",
    "ParsedAnswer",
    "Problem",
    "build_messages",
    "parse_answer",
]
