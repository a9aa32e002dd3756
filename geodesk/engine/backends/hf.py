"""The ``hf`` backend: a vision-language model in-process through transformers (+ bitsandbytes, + peft).

Load: a model folder of one of geodesk's families (:mod:`geodesk.engine.families`: LLaVA in any of
the three key namings of :mod:`geodesk.engine.checkpoint`, Qwen2.5-VL, InternVL3 ``-hf``), chosen
from its ``config.json``, safetensors only, never with remote code, in bf16 / fp16 / fp32 or quantized
to NF4 / int8 with the family's vision side and lm_head kept in the compute dtype, optionally with a
LoRA adapter.

Generate: the conversation is rendered with the model's own chat template (each ``<image>``
placeholder becomes an image part, which the template writes as its image token and the processor
expands to one token per visual token); LLaVA images are padded to square with the mean colour before
the processor (the other families resize whole images themselves). Tokens stream to a callback; a
stopping criterion polls the cancel event after every token.

KV-cache reuse across turns: after each call the backend keeps the cache and the token ids it covers
(prompt + answer, minus the last answer token, whose KV was never computed) and a fingerprint of every
image in it. The next call keeps the longest common token prefix, cut back to the start of the first
image whose pixels differ (image placeholder ids are all the same token, so equal ids do not mean equal
images) and never inside an image's token block, crops the cache to it and feeds only the suffix, with
the pixel values of the images in the suffix. Families whose positions are computed over the whole
prompt (Qwen2.5-VL's M-RoPE, InternVL) reuse the cache only when the suffix holds no image, which is
the case for text-only hint turns. Greedy output is identical to a cold run (tested per family).
"""

from __future__ import annotations

import gc
import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import torch
import transformers
from PIL import Image
from transformers import (
    DynamicCache,
    StaticCache,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from geodesk.domain.model import ModelIdentity
from geodesk.engine.backends.base import (
    IMAGE_PLACEHOLDER,
    BackendError,
    ChatMessage,
    FinishReason,
    GenerationResult,
    GenerationSettings,
    PromptTooLongError,
    Role,
    TokenCallback,
    template_messages,
)
from geodesk.engine.checkpoint import CheckpointError, checkpoint_naming, unlisted_weight_files, weight_files
from geodesk.engine.families import LLAVA, Family, FamilyError, detect_family, family_from_config
from geodesk.engine.imaging import ImageRefusedError, prepare_image
from geodesk.engine.package import (
    MANIFEST_NAME,
    PackageError,
    hash_files,
    identity_from_hashes,
    read_manifest,
    verify_package,
)

Dtype = Literal["auto", "bf16", "fp16", "fp32"]
Quantization = Literal["none", "nf4", "int8"]
_hf: Any = transformers  # constructors transformers leaves untyped are called through Any
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# transformers 5 matches skip modules from the start of the module name: the short forms
# ("vision_tower") would not match "model.vision_tower.*" and CLIP would be quantized silently.
# Each family names its own (geodesk.engine.families); this is LLaVA's.
SKIP_MODULES = LLAVA.skip_modules


@dataclass(frozen=True, slots=True)
class HFOptions:
    dtype: Dtype = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    device: str = "auto"  # auto: "cuda" when present, else "cpu"; or "cpu", "cuda", "cuda:1"
    quantization: Quantization = "none"
    adapter: str | Path | None = None  # a peft LoRA adapter folder (adapter_config.json + safetensors)
    reuse_cache: bool = True
    cache: Literal["dynamic", "static"] = "dynamic"  # static: pre-allocated, torch.compile can capture it
    max_context: int = 4096  # static cache length
    compile: bool = False  # torch.compile the decode step (transformers does it with a static cache on CUDA)
    # The identity of the folder's files as the caller just checked them (the registry's load check);
    # None: the backend hashes every file itself and compares with geodesk-model.json.
    verified_identity: ModelIdentity | None = None
    max_images_per_message: int | None = None  # None: from the manifest (1 without one)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise BackendError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise BackendError("a CUDA device was asked for but none is available; use --device cpu")
    return resolved


def resolve_dtype(dtype: Dtype, device: torch.device, quantization: Quantization = "none") -> torch.dtype:
    """auto: bf16 on CUDA, fp32 on CPU; fp16 for int8 (LLM.int8 casts its inputs to fp16 anyway)."""
    if dtype == "auto":
        if quantization == "int8":
            return torch.float16
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; use auto, bf16, fp16 or fp32")
    return _DTYPES[dtype]


def quantization_config(
    quantization: Quantization, compute_dtype: torch.dtype, skip_modules: Sequence[str] = SKIP_MODULES
) -> Any:
    """The BitsAndBytesConfig for ``quantization`` (None for none), leaving ``skip_modules`` unquantized."""
    if quantization == "none":
        return None
    if quantization == "nf4":
        return _hf.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=list(skip_modules),
        )
    if quantization == "int8":
        return _hf.BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(skip_modules))
    raise BackendError(f"unknown quantization {quantization!r}; use none, nf4 or int8")


def _check_adapter(adapter: Path) -> None:
    if not (adapter / "adapter_config.json").is_file():
        raise BackendError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json)")
    if not (adapter / "adapter_model.safetensors").is_file():
        pickles = [p.name for p in adapter.glob("adapter_model.*")]
        detail = f" (it has {', '.join(pickles)}, a pickle, which geodesk refuses)" if pickles else ""
        raise BackendError(
            f"{adapter} has no adapter_model.safetensors{detail}; save the adapter as safetensors"
        )


class _Cancel(StoppingCriteria):
    """Stops generation at the next token boundary once ``event`` is set."""

    def __init__(self, event: threading.Event | None) -> None:
        self.event = event
        self.triggered = False

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        stop = self.event is not None and self.event.is_set()
        self.triggered = self.triggered or stop
        flags = torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)
        return cast("torch.BoolTensor", flags)  # [batch] bool: True stops that sequence


class _Streamer(BaseStreamer):
    """Decodes the answer incrementally and hands each new piece of text to ``on_token``.

    Pieces are emitted only when the decoded text extends what was already sent and does not end in
    an incomplete UTF-8 sequence (U+FFFD), so the pieces always concatenate to the final text.
    """

    def __init__(self, tokenizer: Any, on_token: TokenCallback | None, started: float) -> None:
        self.tokenizer = tokenizer
        self.on_token = on_token
        self.started = started
        self.ids: list[int] = []
        self.sent = ""
        self.first_token_s: float | None = None
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first puts the prompt ids
            self._prompt_seen = True
            return
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        if self.on_token is None:
            return
        text = self.decode()
        if text.startswith(self.sent) and not text.endswith("\ufffd") and len(text) > len(self.sent):
            piece, self.sent = text[len(self.sent) :], text
            self.on_token(piece)

    def end(self) -> None:
        if self.on_token is None:
            return
        text = self.decode()
        if text.startswith(self.sent) and len(text) > len(self.sent):
            piece, self.sent = text[len(self.sent) :], text
            self.on_token(piece)

    def decode(self) -> str:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return str(text)


@dataclass
class _CacheState:
    cache: Any  # transformers Cache
    ids: list[int]  # the token ids whose keys/values the cache holds
    image_fingerprints: list[str]  # one per image, in prompt order


@dataclass
class _Prompt:
    text: str
    input_ids: torch.Tensor  # [1, L]
    pixel_values: torch.Tensor | None  # LLaVA: [n_images, 3, H, W]; Qwen2.5-VL: [n_patches, C*T*P*P]
    vision_inputs: dict[str, Any]  # the processor's other outputs (image_grid_thw, mm_token_type_ids...)
    image_spans: list[tuple[int, int]] = field(default_factory=list)  # [start, end) token positions per image
    fingerprints: list[str] = field(default_factory=list)


def load_processor(folder: Path, family: Family) -> Any:
    """The family's processor for a model folder (image-only for the families with a video part)."""
    if family.processor == "auto":
        return _hf.AutoProcessor.from_pretrained(folder, trust_remote_code=False)
    from geodesk.engine.families.processors import (
        StillInternVLProcessor,
        StillQwen3VLProcessor,
        StillQwen25VLProcessor,
        load_still_processor,
    )

    if family.processor == "still-qwen2_5_vl":
        return load_still_processor(StillQwen25VLProcessor, folder, _hf.Qwen2VLImageProcessorPil)
    if family.processor == "still-qwen3_vl":  # Qwen3-VL uses the Qwen2-VL image processor (patch 16)
        return load_still_processor(StillQwen3VLProcessor, folder, _hf.Qwen2VLImageProcessorPil)
    import json

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return load_still_processor(
        StillInternVLProcessor, folder, _hf.GotOcr2ImageProcessorPil,
        image_seq_length=int(config.get("image_seq_length", 256)),
    )


def _fingerprints(pixel_values: torch.Tensor, vision_inputs: dict[str, Any], n_images: int) -> list[str]:
    """One hash per image of the pixels the model sees (processor output, small: not the original).

    LLaVA: ``pixel_values[i]`` is image i. Qwen2.5-VL: rows are patches, image i has
    ``prod(image_grid_thw[i])`` of them. InternVL: tiles per image are not reported, so every image
    gets the hash of the whole tensor (any changed image invalidates all; hint turns add no image).
    """

    def digest(t: torch.Tensor) -> str:
        return hashlib.sha256(t.contiguous().float().numpy().tobytes()).hexdigest()

    if pixel_values.shape[0] == n_images:
        return [digest(pixel_values[i]) for i in range(n_images)]
    grid = vision_inputs.get("image_grid_thw")
    if grid is not None and len(grid) == n_images:
        sizes = [int(torch.prod(g)) for g in grid]
        return [digest(chunk) for chunk in torch.split(pixel_values, sizes)]
    return [digest(pixel_values)] * n_images


class HFBackend:
    """A model folder loaded in this process. Not thread-safe across calls: calls are serialised."""

    name = "hf"

    def __init__(self, model_dir: str | Path, options: HFOptions | None = None) -> None:
        self.options = options or HFOptions()
        self.model_dir = Path(model_dir).expanduser().resolve()
        self._lock = threading.Lock()
        self._state: _CacheState | None = None
        self.device = resolve_device(self.options.device)
        self.dtype = resolve_dtype(self.options.dtype, self.device, self.options.quantization)
        self.profile = "gaga"
        self.identity, manifest_images = self._identity()
        self.max_images_per_message = self.options.max_images_per_message or manifest_images
        self.model: Any = self._load_model()
        try:
            processor = load_processor(self.model_dir, self.family)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise BackendError(
                f"{self.model_dir}: the processor / tokenizer files cannot be read ({exc})"
            ) from None
        self._setup(processor)

    @classmethod
    def from_loaded(
        cls,
        model: Any,
        processor: Any,
        identity: ModelIdentity,
        options: HFOptions | None = None,
    ) -> HFBackend:
        """Wrap a model already in memory (training evaluation, benchmarks): no files are read.

        ``options`` only matter for generation (cache, compile, images per message); dtype, device and
        quantization are whatever ``model`` already has.
        """
        self = cls.__new__(cls)
        self.options = options or HFOptions()
        self.model_dir = Path(identity.path or ".")
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.family = family_from_config(base.config.to_dict(), "the model's config")
        self.profile = self.family.default_profile
        self._lock = threading.Lock()
        self._state = None
        self.device = next(model.parameters()).device
        self.dtype = model.dtype
        self.identity = identity
        self.max_images_per_message = self.options.max_images_per_message or 1
        model.generation_config.disable_compile = not self.options.compile
        self.model = model.eval()
        self._setup(processor)
        return self

    def _setup(self, processor: Any) -> None:
        """Processor-derived state shared by both constructors."""
        self.processor = processor
        self._image_tokens: int | None = None  # tokens one image expands to (measured once)
        self.tokenizer = self.processor.tokenizer
        if not getattr(self.processor, "chat_template", None):
            raise BackendError(
                f"{self.model_dir} has no chat template (chat_template.jinja); add the model's template"
            )
        image_mean = getattr(getattr(self.processor, "image_processor", None), "image_mean", None)
        self.image_mean: tuple[float, ...] | None = tuple(image_mean) if image_mean else None
        self.image_token_id = int(getattr(self._llava_config(), self.family.image_token_attr))
        eos = self.model.generation_config.eos_token_id
        self.eos_ids: list[int] = [int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None]
        if not self.eos_ids:
            raise BackendError(f"{self.model_dir}: generation_config.json names no eos_token_id")
        pad = self.model.generation_config.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.eos_ids[0]

    # ---------------------------------------------------------------- loading

    def _identity(self) -> tuple[ModelIdentity, int]:
        root = self.model_dir
        if not root.is_dir():
            raise BackendError(f"model folder {root} does not exist")
        try:
            self.family = detect_family(root)  # refuses remote-code checkpoints, naming the -hf format
            weight_files(root)  # refuses pickles
            if self.family is LLAVA:
                checkpoint_naming(root)  # refuses unknown / mixed key namings
            if (root / MANIFEST_NAME).is_file():
                manifest = read_manifest(root)
                self.profile = manifest.profile_name
                unlisted = unlisted_weight_files(root, manifest.files)
                if unlisted:
                    raise BackendError(
                        f"{root}: weight files {', '.join(unlisted)} are not in {MANIFEST_NAME}; "
                        "they would load unchecked. Rebuild or reinstall the package"
                    )
                verified = self.options.verified_identity
                if verified is None:
                    # The session records this identity: it must be that of the bytes on disk, not
                    # only the manifest's claim.
                    report = verify_package(root, manifest)
                    if not report.ok:
                        raise BackendError(report.describe())
                    verified = manifest.identity(root)
                identity, files = verified, dict(manifest.files)
                images = manifest.max_images_per_message
            else:
                files = hash_files(root)
                identity = ModelIdentity(root.name, "unversioned", identity_from_hashes(files), str(root))
                images = 1
                self.profile = self.family.default_profile
        except (CheckpointError, PackageError, FamilyError) as exc:
            raise BackendError(str(exc)) from None
        if self.options.adapter is not None:
            adapter = Path(self.options.adapter).expanduser().resolve()
            _check_adapter(adapter)
            # A base + adapter pair is its own model: its identity covers both file lists.
            combined = {**files, **{f"adapter/{k}": v for k, v in hash_files(adapter).items()}}
            identity = ModelIdentity(
                identity.name, f"{identity.version}+{adapter.name}", identity_from_hashes(combined),
                str(root), identity.caveat,
            )
        return identity, images

    def _load_model(self) -> Any:
        quant = quantization_config(self.options.quantization, self.dtype, self.family.skip_modules)
        loader: Any = getattr(transformers, self.family.loader)
        try:
            loaded: Any = loader.from_pretrained(
                self.model_dir,
                dtype=self.dtype,
                device_map={"": str(self.device)},
                quantization_config=quant,
                use_safetensors=True,
                trust_remote_code=False,
                output_loading_info=True,
            )
            model, info = loaded
        except torch.OutOfMemoryError:
            self._free()
            hint = "use a larger GPU"
            if quant is None:
                hint = "try --quantization nf4 (about a third of the bf16 memory)"
            raise BackendError(f"out of GPU memory loading {self.model_dir.name}: {hint}") from None
        except (OSError, ValueError) as exc:
            raise BackendError(
                f"{self.model_dir} cannot be loaded as a {self.family.label} model: {exc}"
            ) from None
        missing = [k for k in info.get("missing_keys", ()) if k != "lm_head.weight" or not self._tied(model)]
        if missing:
            raise BackendError(
                f"{self.model_dir}: {len(missing)} weight(s) are missing from the checkpoint "
                f"(first: {missing[0]}); the files are incomplete or not {self.family.label} weights"
            )
        if self.options.adapter is not None:
            from peft import PeftModel

            adapter = str(Path(self.options.adapter).resolve())
            model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
        if self.options.compile:
            model.generation_config.compile_config = None  # transformers' defaults: fullgraph decode step
        model.generation_config.disable_compile = not self.options.compile
        model.eval()
        return model

    @staticmethod
    def _tied(model: Any) -> bool:
        return bool(getattr(model.config.get_text_config(), "tie_word_embeddings", False))

    def _llava_config(self) -> Any:
        model = self.model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        return base.config

    # ---------------------------------------------------------------- prompts

    def _template_messages(self, messages: Sequence[ChatMessage]) -> tuple[list[dict[str, Any]], list[Any]]:
        """Chat-template messages (list content with image / text parts) and the images in order."""
        images: list[Any] = []
        for message in messages:
            if len(message.images) > self.max_images_per_message:
                raise BackendError(
                    f"a message carries {len(message.images)} images; this model takes at most "
                    f"{self.max_images_per_message} per message"
                )
            images.extend(message.images)
        return template_messages([(m.role, m.text) for m in messages]), images

    @property
    def context_window(self) -> int:
        """Positions the language model was built for: prompt + answer must fit (longer runs off the
        rotary table and balloons the attention memory)."""
        text_config = self._llava_config().get_text_config()
        return int(getattr(text_config, "max_position_embeddings", 0) or self.options.max_context)

    def count_prompt_tokens(self, conversation: Sequence[tuple[Role, str]]) -> int:
        """Tokens of the rendered prompt, each image counted as the processor expands it, without
        touching the model (``geodesk serve`` checks a request against :attr:`context_window` with it)."""
        text = str(
            self.processor.apply_chat_template(
                template_messages(conversation), add_generation_prompt=True, tokenize=False
            )
        )
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        images = sum(t.count(IMAGE_PLACEHOLDER) for _, t in conversation)
        # The template writes one image token per image; the processor expands it to a block.
        return len(ids) + images * (self._tokens_per_image() - 1)

    def _tokens_per_image(self) -> int:
        if self._image_tokens is None:
            side = 32
            processor_size = getattr(getattr(self.processor, "image_processor", None), "crop_size", None)
            if isinstance(processor_size, dict) and processor_size.get("height"):
                side = int(processor_size["height"])
            blank = prepare_image(Image.new("RGB", (side, side)), self.image_mean)
            token = str(getattr(self.processor, "image_token", IMAGE_PLACEHOLDER))
            encoded = self.processor(
                text=[token], images=[blank], return_tensors="pt", add_special_tokens=False
            )
            self._image_tokens = int((encoded["input_ids"][0] == self.image_token_id).sum())
        return self._image_tokens

    def _build_prompt(self, messages: Sequence[ChatMessage]) -> _Prompt:
        if not messages or messages[-1].role != "user":
            raise BackendError("the conversation must end with a user message")
        conversation, images = self._template_messages(messages)
        template = self.processor.apply_chat_template
        text = str(template(conversation, add_generation_prompt=True, tokenize=False))
        try:
            prepared = [self.prepare_model_image(img) for img in images]
        except (ImageRefusedError, OSError) as exc:
            raise BackendError(f"an image cannot be given to the model: {exc}") from None
        encoded = self.processor(
            text=[text], images=prepared or None, return_tensors="pt", add_special_tokens=False
        )
        input_ids = encoded["input_ids"]
        pixel_values = encoded.get("pixel_values") if prepared else None
        skip = {"input_ids", "attention_mask", "pixel_values"}
        vision_inputs = {k: v for k, v in encoded.items() if k not in skip}
        positions = (input_ids[0] == self.image_token_id).nonzero().flatten().tolist()
        spans: list[tuple[int, int]] = []
        fingerprints: list[str] = []
        if prepared:
            assert pixel_values is not None
            per_image = len(positions) // len(prepared)
            if per_image == 0 or per_image * len(prepared) != len(positions):
                raise BackendError(
                    "the processor expanded the image placeholders inconsistently; check the model folder"
                )
            # Image i occupies token positions [start, end): per_image consecutive placeholder ids.
            starts = positions[::per_image]
            spans = [(start, start + per_image) for start in starts]
            fingerprints = _fingerprints(pixel_values, vision_inputs, len(prepared))
        elif positions:
            raise BackendError(
                f"the prompt contains the image token {IMAGE_PLACEHOLDER!r} but no image was given"
            )
        return _Prompt(text, input_ids, pixel_values, vision_inputs, spans, fingerprints)

    def prepare_model_image(self, image: Any) -> Any:
        """Orientation and RGB for every family; LLaVA's mean-colour square padding where it applies."""
        from geodesk.engine.imaging import bounded_rgb

        if self.family.pad_to_square:
            return prepare_image(image, self.image_mean)
        # Qwen2.5-VL and InternVL resize on their side, but the decode must still be bounded.
        return bounded_rgb(image, self.image_mean)

    # ---------------------------------------------------------------- KV cache

    def _new_cache(self) -> Any:
        config = self._llava_config()
        if self.options.cache == "static":
            return StaticCache(config=config, max_cache_len=self.options.max_context)
        return DynamicCache(config=config)

    def _reusable_prefix(self, prompt: _Prompt) -> int:
        """How many leading prompt tokens the kept cache already covers (0 when nothing is reusable)."""
        state = self._state
        if state is None or not self.options.reuse_cache:
            return 0
        new_ids = prompt.input_ids[0].tolist()
        limit = min(len(state.ids), len(new_ids) - 1)  # at least one token must be fed to get logits
        k = 0
        while k < limit and state.ids[k] == new_ids[k]:
            k += 1
        for i, (start, end) in enumerate(prompt.image_spans):
            if start >= k:
                break
            known = state.image_fingerprints
            same_image = i < len(known) and known[i] == prompt.fingerprints[i]
            if not same_image or end > k:
                k = start
                break
        if not self.family.cache_reuse_with_new_images and any(s >= k for s, _ in prompt.image_spans):
            return 0  # an image in the uncached suffix: this family prefills the whole prompt again
        return k

    def _take_cache(self, prompt: _Prompt) -> tuple[Any, int]:
        k = self._reusable_prefix(prompt)
        state, self._state = self._state, None
        if state is None or k == 0:
            if state is not None and self.options.cache == "static":
                state.cache.reset()
                return state.cache, 0
            return self._new_cache(), 0
        cached = state.cache.get_seq_length()
        if k < cached:
            if self.options.cache == "static":  # a static cache cannot be cropped: start again
                state.cache.reset()
                return state.cache, 0
            state.cache.crop(k - cached)  # negative: the number of tokens to drop
        return state.cache, k

    # ---------------------------------------------------------------- generation

    def generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        with self._lock:
            if self.model is None:
                raise BackendError("this model was closed; open it again")
            try:
                return self._generate(messages, settings, on_token, cancel)
            except torch.OutOfMemoryError:
                self._state = None
                self._free()
                raise BackendError(
                    "out of GPU memory while generating: start a new session (shorter history), "
                    "use fewer images, or load the model with --quantization nf4"
                ) from None
            except BaseException:
                self._state = None  # the cache may hold a half-written step
                raise

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        on_token: TokenCallback | None,
        cancel: threading.Event | None,
    ) -> GenerationResult:
        started = time.perf_counter()
        prompt = self._build_prompt(messages)
        prompt_len = int(prompt.input_ids.shape[1])
        if prompt_len + settings.max_new_tokens > self.context_window:
            raise PromptTooLongError(prompt_len, settings.max_new_tokens, self.context_window)
        if self.options.cache == "static" and prompt_len + settings.max_new_tokens > self.options.max_context:
            raise BackendError(
                f"the conversation needs {prompt_len + settings.max_new_tokens} tokens; the static cache "
                f"holds {self.options.max_context}: start a new session or raise max_context"
            )
        if cancel is not None and cancel.is_set():
            elapsed = time.perf_counter() - started
            return GenerationResult("", prompt_len, 0, None, elapsed, True, "cancelled", prompt.text)
        with torch.inference_mode():  # the kept cache holds inference tensors: crop / reset them in that mode
            cache, reused = self._take_cache(prompt)
        # Only the images whose token blocks lie in the uncached suffix are encoded again.
        suffix_images = [i for i, (start, _) in enumerate(prompt.image_spans) if start >= reused]
        pixel_values = None
        vision_inputs: dict[str, Any] = {}
        if prompt.pixel_values is not None and suffix_images:
            if self.family.cache_reuse_with_new_images:
                pixel_values = prompt.pixel_values[suffix_images].to(self.device, self.dtype)
            else:  # reused == 0 here (see _reusable_prefix): every image is encoded
                pixel_values = prompt.pixel_values.to(self.device, self.dtype)
                vision_inputs = dict(prompt.vision_inputs)
        if "mm_token_type_ids" in prompt.vision_inputs:
            # Qwen2.5-VL marks image tokens over the whole prompt to place its 3-D positions.
            vision_inputs["mm_token_type_ids"] = prompt.vision_inputs["mm_token_type_ids"]
        vision_inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in vision_inputs.items()}
        input_ids = prompt.input_ids.to(self.device)
        streamer = _Streamer(self.tokenizer, on_token, started)
        stopper = _Cancel(cancel)
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "past_key_values": cache,
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": not settings.greedy,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([stopper]),
            "use_cache": True,
        }
        if pixel_values is not None:
            kwargs["pixel_values"] = pixel_values
        kwargs.update(vision_inputs)
        if settings.greedy:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=None)
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            sequences = self.model.generate(**kwargs)
        answer_ids = sequences[0, prompt_len:].tolist()
        total = time.perf_counter() - started
        finish: FinishReason
        if answer_ids and answer_ids[-1] in self.eos_ids:
            finish = "stop"
        elif stopper.triggered:
            finish = "cancelled"
        else:
            finish = "length"
        if self.options.reuse_cache:
            all_ids = sequences[0].tolist()
            self._state = _CacheState(cache, all_ids[: cache.get_seq_length()], prompt.fingerprints)
        return GenerationResult(
            text=streamer.decode(),
            prompt_tokens=prompt_len,
            answer_tokens=len(answer_ids),
            time_to_first_token_s=streamer.first_token_s,
            total_time_s=total,
            cancelled=finish == "cancelled",
            finish_reason=finish,
            prompt_text=prompt.text,
            cached_prompt_tokens=reused,
        )

    def _rng_devices(self) -> list[int]:
        return [self.device.index or 0] if self.device.type == "cuda" else []

    def reset_cache(self) -> None:
        """Forget the kept KV cache (the next call prefills from scratch)."""
        with self._lock:
            self._state = None

    def close(self) -> None:
        with self._lock:
            self._state = None
            self.model = None
            self._free()

    @staticmethod
    def _free() -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
