"""Image-only processors for the families whose transformers processor also carries a video part.

transformers 5.23's ``Qwen2_5_VLProcessor``, ``Qwen3VLProcessor`` and ``InternVLProcessor`` take a video
processor, and every video processor needs torchvision; torchvision's registry wheels are built against
the CUDA torch and do not load beside the CPU torch geodesk's test machines run. geodesk sends still
photographs only, so these subclasses keep the family's own processor code (placeholder expansion,
``mm_token_type_ids``, the saved chat template) and leave out the video attribute. A folder loaded here
reads the same ``tokenizer*``, ``preprocessor_config.json`` and ``chat_template.jinja`` files the full
processor reads; the image processor is the PIL backend (no torchvision either).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import transformers
from transformers.processing_utils import ProcessorMixin

_hf: Any = transformers


class StillQwen25VLProcessor(_hf.Qwen2_5_VLProcessor):  # type: ignore[misc]
    """``Qwen2_5_VLProcessor`` without its video processor (images and text only)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None,
                 **kwargs: Any) -> None:
        # The attributes the parent's __init__ sets before ProcessorMixin's; the same lookups.
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(
            self.image_token
        )
        self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(
            self.video_token
        )
        mixin_init: Any = ProcessorMixin.__init__  # untyped in transformers
        mixin_init(self, image_processor, tokenizer, chat_template=chat_template)


class StillQwen3VLProcessor(_hf.Qwen3VLProcessor):  # type: ignore[misc]
    """``Qwen3VLProcessor`` without its video processor (images and text only)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None,
                 **kwargs: Any) -> None:
        # The attributes the parent's __init__ sets around ProcessorMixin's; the same lookups.
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        mixin_init: Any = ProcessorMixin.__init__  # untyped in transformers
        mixin_init(self, image_processor, tokenizer, chat_template=chat_template)
        self.vision_start_token = getattr(tokenizer, "vision_start_token", None) or "<|vision_start|>"
        self.vision_end_token = getattr(tokenizer, "vision_end_token", None) or "<|vision_end|>"
        self.vision_start_token_id = tokenizer.convert_tokens_to_ids(self.vision_start_token)
        self.vision_end_token_id = tokenizer.convert_tokens_to_ids(self.vision_end_token)


class StillInternVLProcessor(_hf.InternVLProcessor):  # type: ignore[misc]
    """``InternVLProcessor`` without its video processor (images and text only)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, image_seq_length: int = 256,
                 chat_template: Any = None, **kwargs: Any) -> None:
        mixin_init: Any = ProcessorMixin.__init__  # untyped in transformers
        mixin_init(self, image_processor, tokenizer, chat_template=chat_template)
        self.image_seq_length = image_seq_length
        self.start_image_token = tokenizer.start_image_token
        self.end_image_token = tokenizer.end_image_token
        self.start_image_token_id = tokenizer.start_image_token_id
        self.end_image_token_id = tokenizer.end_image_token_id
        self.image_token = tokenizer.context_image_token
        self.video_token = tokenizer.video_token
        self.image_token_id = tokenizer.context_image_token_id
        self.multimodal_pattern = re.compile(
            f"(?P<image>{re.escape(self.image_token)})|(?P<video>{re.escape(self.video_token)})"
        )


def load_still_processor(kind: type[Any], folder: Path, image_processor_class: Any, **extra: Any) -> Any:
    """Build ``kind`` from a model folder's tokenizer, image processor config and chat template."""
    tokenizer = _hf.AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    image_processor = image_processor_class.from_pretrained(folder)
    template_file = folder / "chat_template.jinja"
    template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
    if template is None:
        template = getattr(tokenizer, "chat_template", None)
    return kind(image_processor=image_processor, tokenizer=tokenizer, chat_template=template, **extra)


def name_public_processor(folder: Path, public: str) -> None:
    """Write the family's own processor class name where transformers saved the image-only subclass,
    so other runtimes (vLLM, lmdeploy, a full transformers install) load the folder as published."""
    import json

    for path in folder.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and str(data.get("processor_class", "")).startswith("Still"):
            data["processor_class"] = public
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
