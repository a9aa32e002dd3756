"""Model backends behind one interface (:mod:`geodesk.engine.backends.base`).

Only the torch-free interface is imported here; ``geodesk.engine.backends.hf`` loads transformers and
is imported by whoever opens an in-process model.
"""

from geodesk.engine.backends.base import (
    IMAGE_PLACEHOLDER,
    Backend,
    BackendError,
    ChatMessage,
    GenerationResult,
    GenerationSettings,
)

__all__ = [
    "IMAGE_PLACEHOLDER",
    "Backend",
    "BackendError",
    "ChatMessage",
    "GenerationResult",
    "GenerationSettings",
]
