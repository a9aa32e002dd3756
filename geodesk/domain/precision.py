"""One vocabulary for weights' precision, shared by the settings, the CLI, the backends and training.

``dtype``: ``auto`` (bf16 on CUDA, fp32 on CPU), ``bf16``, ``fp16``, ``fp32``; ``quantization``:
``none``, ``nf4`` (4-bit NormalFloat, bitsandbytes) or ``int8`` (8-bit, bitsandbytes). Settings files
written with the older spellings (``bfloat16``, ``4bit`` ...) are migrated to these on read.
"""

from __future__ import annotations

DTYPES = ("auto", "bf16", "fp16", "fp32")
QUANTIZATIONS = ("none", "nf4", "int8")

# The spellings settings.json used before this vocabulary (settings version 1).
OLD_DTYPE_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
OLD_QUANTIZATION_NAMES = {"4bit": "nf4", "8bit": "int8"}
