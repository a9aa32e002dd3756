"""Convert an XTuner LLaVA export into one llava-hf model folder (no dependency on the xtuner package).

XTuner's ``LLaVAModel.to_xtuner_llava`` writes what was trained, each part with ``save_pretrained``:

- the LLM: a full HF causal LM (weights + tokenizer) in the export folder itself (or ``llm/``) when it
  was fine-tuned fully; ``llm_adapter/`` (a peft LoRA adapter) when it was LoRA-tuned; nothing when it
  was frozen. In the last two cases the base LLM is the model the run started from (``--llm``, or the
  adapter's ``base_model_name_or_path`` when that is a local folder);
- the visual encoder: ``visual_encoder/`` (``CLIPVisionModel`` + ``preprocessor_config.json``) when
  fine-tuned, ``visual_encoder_adapter/`` for LoRA, nothing when frozen (then ``--visual-encoder``);
- ``projector/``: XTuner's ``ProjectorModel``, ``config.json`` with ``visual_hidden_size``,
  ``llm_hidden_size``, ``depth``, ``hidden_act``, ``bias``; ``nn.Sequential`` weights ``model.0.*``
  (Linear visual->llm), ``model.1`` (activation, no weights), ``model.2.*`` (Linear llm->llm).

The key maps are XTuner's own (``convert_xtuner_weights_to_hf.py`` / ``to_huggingface_llava``), into
the legacy llava-hf names, then through :func:`geodesk.engine.checkpoint.flat_key` into the
transformers-5 in-memory names::

    LLM        model.*          -> language_model.model.*      (-> model.language_model.*)
               lm_head.*        -> language_model.lm_head.*    (-> lm_head.*)
    CLIP       vision_model.*   -> vision_tower.vision_model.* (-> model.vision_tower.*)
    projector  model.0.*        -> multi_modal_projector.linear_1.*
               model.2.*        -> multi_modal_projector.linear_2.*

The result is saved with ``save_pretrained`` like :mod:`geodesk.engine.tiny` (the naming transformers 5
writes; the loader accepts all three, :func:`geodesk.engine.checkpoint.export_legacy` gives lmdeploy's).
LoRA adapters are merged with peft ``merge_and_unload`` on an fp32 copy of the base (exact for fp16 and
bf16 weights), and the merged weights are cast back to the base's dtype. Tensors are otherwise copied
unchanged, so the converted model computes what the XTuner parts computed.

When the LLM tokenizer has no ``<image>`` token (XTuner uses the index -200 internally, so its LLM
tokenizer never has one), it is added; the new embedding row and ``lm_head`` row are the means of the
existing rows (XTuner's converter samples around that mean; the mean keeps the conversion reproducible).
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodesk.engine.checkpoint import PICKLE_SUFFIXES, CheckpointError, flat_key, weight_files

if TYPE_CHECKING:
    import torch

IMAGE_TOKEN = "<image>"
# XTuner's visual_select_layer default: the penultimate CLIP layer, CLS dropped ("default" strategy).
VISION_FEATURE_LAYER = -2
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

# XTuner's maps into the legacy llava-hf names (the first matching prefix applies).
LLM_KEY_MAP: tuple[tuple[str, str], ...] = (
    ("model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
)
VISION_KEY_MAP: tuple[tuple[str, str], ...] = (("vision_model.", "vision_tower.vision_model."),)
PROJECTOR_KEY_MAP: tuple[tuple[str, str], ...] = (
    ("model.0.", "multi_modal_projector.linear_1."),
    ("model.2.", "multi_modal_projector.linear_2."),
)
# Keys that are buffers recomputed at load time, or other towers of a full CLIPModel checkpoint.
_SKIPPED_SUFFIXES = (".inv_freq", "position_ids")
_CLIP_OTHER_PREFIXES = ("text_model.", "text_projection.", "visual_projection.", "logit_scale")
# A transformers-5 CLIPVisionModel saves its keys without the ``vision_model.`` prefix.
_BARE_CLIP_PREFIXES = ("embeddings.", "encoder.", "pre_layrnorm.", "post_layernorm.")
_LLAMA3_HEADER = "<|start_header_id|>"
_END_IDS = ("<|eot_id|>", "<|end_of_text|>")


class XTunerError(Exception):
    """An XTuner export cannot be converted; the message says what is missing or wrong."""


@dataclass(frozen=True, slots=True)
class XTunerParts:
    """Where each part of an export (and the base models it needs) lives."""

    export: Path
    llm: Path  # a full HF causal LM folder: the tuned LLM, or the base of llm_adapter
    llm_adapter: Path | None
    visual_encoder: Path  # a CLIPVisionModel (or CLIPModel) folder
    visual_encoder_adapter: Path | None
    projector: Path
    tokenizer: Path
    image_processor: Path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise XTunerError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise XTunerError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise XTunerError(f"{path} must hold a JSON object")
    return data


def is_xtuner_export(folder: str | Path) -> bool:
    """An XTuner LLaVA export has ``projector/config.json`` describing a ProjectorModel."""
    config = Path(folder) / "projector" / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "visual_hidden_size" in data and "llm_hidden_size" in data


def _is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (
        any(folder.glob("*.safetensors")) or any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir())
    )


def _local_base(adapter: Path, given: str | Path | None, what: str, flag: str) -> Path:
    if given is not None:
        base = Path(given).expanduser().resolve()
        if not base.is_dir():
            raise XTunerError(f"{what} folder {base} does not exist")
        return base
    named = _read_json(adapter / ADAPTER_CONFIG).get("base_model_name_or_path") or ""
    if named and Path(named).expanduser().is_dir():
        return Path(named).expanduser().resolve()
    raise XTunerError(
        f"{adapter} is a LoRA adapter trained on {named or 'an unnamed base model'}, which is not in the "
        f"export; pass that {what}'s folder with {flag} PATH"
    )


def locate_parts(
    export: str | Path,
    *,
    base_llm: str | Path | None = None,
    base_visual_encoder: str | Path | None = None,
) -> XTunerParts:
    """Find the LLM, visual encoder, adapters and projector of an export; clear errors for gaps."""
    root = Path(export).expanduser().resolve()
    if not is_xtuner_export(root):
        raise XTunerError(f"{root} is not an XTuner LLaVA export (no projector/config.json)")

    llm_adapter = root / "llm_adapter" if (root / "llm_adapter" / ADAPTER_CONFIG).is_file() else None
    if llm_adapter is not None:
        llm = _local_base(llm_adapter, base_llm, "base LLM", "--llm")
    elif base_llm is not None:
        llm = Path(base_llm).expanduser().resolve()
    elif _is_model_folder(root):
        llm = root  # fully fine-tuned LLM saved in the export folder itself
    elif _is_model_folder(root / "llm"):
        llm = root / "llm"
    else:
        raise XTunerError(
            f"{root} holds no LLM (no weights in the folder, no llm/ or llm_adapter/): the LLM was frozen "
            "during training; pass the LLM it started from with --llm PATH"
        )
    if not (llm / "config.json").is_file():
        raise XTunerError(f"the LLM folder {llm} has no config.json")

    ve_adapter: Path | None = root / "visual_encoder_adapter"
    if not (root / "visual_encoder_adapter" / ADAPTER_CONFIG).is_file():
        ve_adapter = None
    if ve_adapter is not None:
        visual = _local_base(ve_adapter, base_visual_encoder, "base visual encoder", "--visual-encoder")
    elif base_visual_encoder is not None:
        visual = Path(base_visual_encoder).expanduser().resolve()
    elif (root / "visual_encoder" / "config.json").is_file():
        visual = root / "visual_encoder"
    else:
        raise XTunerError(
            f"{root} has no visual_encoder/ (the CLIP encoder was frozen during training); pass the CLIP "
            "folder it used with --visual-encoder PATH"
        )
    if not (visual / "config.json").is_file():
        raise XTunerError(f"the visual encoder folder {visual} has no config.json")

    tokenizer_candidates = [root, llm] if llm_adapter is not None else [llm, root]
    tokenizer_files = ("tokenizer.json", "tokenizer.model")
    tokenizer = next(
        (d for d in tokenizer_candidates if any((d / f).is_file() for f in tokenizer_files)), None
    )
    if tokenizer is None:
        raise XTunerError(f"no tokenizer (tokenizer.json or tokenizer.model) in {llm} or {root}")
    processor_candidates = [root / "visual_encoder", visual]
    image_processor = next(
        (d for d in processor_candidates if (d / "preprocessor_config.json").is_file()), None
    )
    if image_processor is None:
        raise XTunerError(
            f"no preprocessor_config.json next to the visual encoder ({visual}); copy it from the CLIP "
            "model the export was trained with"
        )
    return XTunerParts(
        root, llm, llm_adapter, visual, ve_adapter, root / "projector", tokenizer, image_processor
    )


def estimate_output_bytes(
    export: str | Path,
    *,
    base_llm: str | Path | None = None,
    base_visual_encoder: str | Path | None = None,
) -> int:
    """Bytes the converted checkpoint will take: the weights of the three parts (adapters merge in)."""
    parts = locate_parts(export, base_llm=base_llm, base_visual_encoder=base_visual_encoder)
    total = 0
    for folder in (parts.llm, parts.visual_encoder, parts.projector):
        total += sum(p.stat().st_size for p in _weight_files(folder))
    return total + 64 * 1024 * 1024  # tokenizer, configs and the image-token rows


def _map_key(key: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for old, new in table:
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def _weight_files(folder: Path) -> list[Path]:
    try:
        return weight_files(folder)
    except CheckpointError as exc:  # pickles only, missing shards: the same sentence, one error type
        raise XTunerError(str(exc)) from None


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors model folder (refuses pickles via ``weight_files``)."""
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    for path in _weight_files(folder):
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 - safe_open is not a dict
                tensors[key] = fh.get_tensor(key)
    return tensors


def _vision_config(folder: Path) -> dict[str, Any]:
    config = _read_json(folder / "config.json")
    if config.get("model_type") == "clip" or "vision_config" in config:
        config = dict(config.get("vision_config") or {})
        config["model_type"] = "clip_vision_model"
    if config.get("model_type") != "clip_vision_model":
        raise XTunerError(
            f"{folder} holds a {config.get('model_type')!r} vision model; this converter handles CLIP "
            "(the llava-hf format's vision tower)"
        )
    return config


def _clip_bare_weights(folder: Path) -> dict[str, torch.Tensor]:
    """CLIP vision weights keyed as a transformers-5 ``CLIPVisionModel`` (no ``vision_model.`` prefix)."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in _read_weights(folder).items():
        if key.endswith(_SKIPPED_SUFFIXES) or key.startswith(_CLIP_OTHER_PREFIXES):
            continue
        if key.startswith("vision_model."):
            out[key[len("vision_model.") :]] = tensor
        elif key.startswith(_BARE_CLIP_PREFIXES):
            out[key] = tensor
        else:
            raise XTunerError(f"{folder}: weight {key!r} is not part of a CLIP vision model")
    return out


def _merge_lora(
    base: Any, weights: dict[str, torch.Tensor], adapter: Path, strip: str = ""
) -> dict[str, Any]:
    """Load ``weights`` into ``base`` (on meta), apply the LoRA ``adapter``, merge; the merged state dict.

    ``strip``: a module-path prefix the adapter's keys carry but ``base`` lacks (XTuner's CLIP adapters
    were saved by transformers 4, whose CLIPVisionModel had a ``vision_model`` level).
    """
    import torch
    from peft import PeftConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    weights_path = adapter / ADAPTER_WEIGHTS
    if not weights_path.is_file():
        pickled = sorted(p.name for p in adapter.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise XTunerError(
                f"{adapter} holds its LoRA weights as a pickle ({', '.join(pickled)}); geodesk reads "
                "safetensors only. Convert it on a trusted machine: load it with peft, then "
                "save_pretrained(folder, safe_serialization=True)."
            )
        raise XTunerError(f"{adapter} has no {ADAPTER_WEIGHTS}")
    dtypes = {t.dtype for t in weights.values()}
    # Merge in fp32: exact for fp16 / bf16 inputs; the result is cast back to the input dtype below.
    base.load_state_dict({k: v.to(torch.float32) for k, v in weights.items()}, strict=True, assign=True)
    config: Any = PeftConfig.from_pretrained(str(adapter))
    if str(getattr(config, "peft_type", "")) not in ("LORA", "PeftType.LORA"):
        raise XTunerError(f"{adapter} is a {config.peft_type} adapter; only LoRA adapters can be merged")
    config.inference_mode = True
    try:
        with warnings.catch_warnings():
            # peft warns that the adapter's recorded base path differs from the base we built: expected.
            warnings.filterwarnings("ignore", message=".*base_model_name_or_path.*")
            model: Any = get_peft_model(base, config)
    except ValueError as exc:
        raise XTunerError(f"{adapter} does not fit its base model: {exc}") from None
    state = load_file(str(weights_path))
    if strip:
        state = {k.replace(f"base_model.model.{strip}", "base_model.model.", 1): v for k, v in state.items()}
    result: Any = set_peft_model_state_dict(model, state)
    unexpected = [k for k in result.unexpected_keys if "lora_" in k]
    missing = [k for k in result.missing_keys if "lora_" in k]
    if unexpected or missing:
        sample = ", ".join((unexpected or missing)[:3])
        raise XTunerError(f"{adapter} does not match its base model's modules (e.g. {sample})")
    merged = model.merge_and_unload()
    target = torch.float32 if len(dtypes) != 1 else next(iter(dtypes))
    return {k: v.detach().to(target) for k, v in merged.state_dict().items()}


def _llm_weights(parts: XTunerParts, text_config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The LLM's state dict (``model.*``, ``lm_head.*``), with the LoRA adapter merged when there is one."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    weights = {k: v for k, v in _read_weights(parts.llm).items() if not k.endswith(_SKIPPED_SUFFIXES)}
    if "lm_head.weight" not in weights and text_config.get("tie_word_embeddings"):
        weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
    if parts.llm_adapter is None:
        return weights
    auto_config: Any = AutoConfig
    config = auto_config.for_model(**text_config)
    auto_model: Any = AutoModelForCausalLM
    with torch.device("meta"):
        base = auto_model.from_config(config)
    return _merge_lora(base, weights, parts.llm_adapter)


def _vision_weights(parts: XTunerParts, vision_config: dict[str, Any]) -> dict[str, torch.Tensor]:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    weights = _clip_bare_weights(parts.visual_encoder)
    if parts.visual_encoder_adapter is not None:
        config_class: Any = CLIPVisionConfig
        with torch.device("meta"):
            base = CLIPVisionModel(config_class(**vision_config))
        weights = _merge_lora(base, weights, parts.visual_encoder_adapter, strip="vision_model.")
    return {"vision_model." + k: v for k, v in weights.items()}


def _projector(parts: XTunerParts) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config = _read_json(parts.projector / "config.json")
    depth = int(config.get("depth", 2))
    if depth != 2:
        raise XTunerError(
            f"{parts.projector} has a {depth}-layer projector; the llava-hf format has exactly two linear "
            "layers (depth 2)"
        )
    weights = _read_weights(parts.projector)
    unknown = sorted(k for k in weights if _map_key(k, PROJECTOR_KEY_MAP) is None)
    if unknown:
        raise XTunerError(f"{parts.projector}: unexpected projector weights {', '.join(unknown)}")
    return config, weights


def _mean_rows(matrix: torch.Tensor, new_rows: int) -> torch.Tensor:
    """``matrix`` [V, H] with ``new_rows`` rows appended, each the mean of the existing rows."""
    import torch

    mean = matrix.float().mean(dim=0, keepdim=True).to(matrix.dtype)  # [1, H]
    return torch.cat([matrix, mean.expand(new_rows, -1)], dim=0)


def _chat_template(tokenizer: Any) -> str:
    from geodesk.engine.tiny import CHAT_TEMPLATE

    if _LLAMA3_HEADER in tokenizer.get_vocab():
        # LLaVA-Llama-3 as XTuner trains it (llama3_chat): image first, newline, then the question.
        return CHAT_TEMPLATE
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template:
        return template
    raise XTunerError(
        "the LLM tokenizer has no chat template and is not Llama-3's; add the template the model was "
        "trained with (chat_template in tokenizer_config.json) and convert again"
    )


def convert_xtuner(
    export: str | Path,
    out_dir: str | Path,
    *,
    base_llm: str | Path | None = None,
    base_visual_encoder: str | Path | None = None,
) -> Path:
    """Write the llava-hf folder for an XTuner export into ``out_dir`` (absent or empty; no manifest).

    Holds every weight in memory once (about the size of the checkpoint; an LLM adapter merge needs the
    LLM once more in fp32).
    """
    import torch
    import transformers

    hf: Any = transformers  # transformers leaves these constructors untyped
    parts = locate_parts(export, base_llm=base_llm, base_visual_encoder=base_visual_encoder)
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise XTunerError(f"{out} already exists and is not empty; choose a new folder")

    text_config = _read_json(parts.llm / "config.json")
    if text_config.get("auto_map"):
        raise XTunerError(
            f"{parts.llm} needs remote code ({text_config.get('model_type')}); geodesk converts LLMs that "
            "transformers implements itself (Llama, Mistral, Qwen2, ...)"
        )
    if text_config.get("model_type") not in hf.CONFIG_MAPPING:
        raise XTunerError(f"{parts.llm}: unknown LLM model type {text_config.get('model_type')!r}")
    vision_config = _vision_config(parts.visual_encoder)
    projector_config, projector_weights = _projector(parts)
    for have, want, what in (
        (projector_config.get("visual_hidden_size"), vision_config.get("hidden_size"), "visual"),
        (projector_config.get("llm_hidden_size"), text_config.get("hidden_size"), "LLM"),
    ):
        if int(have or 0) != int(want or 0):
            raise XTunerError(
                f"the projector expects a {what} hidden size of {have}, the {what} model has {want}: the "
                "parts do not belong to one model"
            )

    # --- weights, through XTuner's key maps into legacy llava-hf names, then transformers-5 names ---
    legacy: dict[str, torch.Tensor] = {}
    for key, tensor in _llm_weights(parts, text_config).items():
        mapped = _map_key(key, LLM_KEY_MAP)
        if mapped is None:
            raise XTunerError(f"{parts.llm}: weight {key!r} is not part of a causal LM")
        legacy[mapped] = tensor
    for key, tensor in _vision_weights(parts, vision_config).items():
        mapped = _map_key(key, VISION_KEY_MAP)
        assert mapped is not None  # _vision_weights prefixes every key with vision_model.
        legacy[mapped] = tensor
    for key, tensor in projector_weights.items():
        mapped = _map_key(key, PROJECTOR_KEY_MAP)
        assert mapped is not None  # checked in _projector
        legacy[mapped] = tensor
    try:
        state = {flat_key(k): v for k, v in legacy.items()}
    except CheckpointError as exc:
        raise XTunerError(str(exc)) from None

    # --- tokenizer: the image token, padding, chat template ---
    tokenizer = hf.AutoTokenizer.from_pretrained(str(parts.tokenizer), trust_remote_code=False)
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        token = hf.AddedToken(IMAGE_TOKEN, special=True, normalized=False)
        tokenizer.add_tokens([token], special_tokens=True)
    image_token_id = int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    if tokenizer.pad_token is None:
        vocab = tokenizer.get_vocab()
        tokenizer.pad_token = "<|end_of_text|>" if "<|end_of_text|>" in vocab else tokenizer.eos_token
    embed_key, head_key = "model.language_model.embed_tokens.weight", "lm_head.weight"
    vocab_size = int(state[embed_key].shape[0])  # [V, H]
    if image_token_id >= vocab_size:
        grow = image_token_id + 1 - vocab_size
        state[embed_key] = _mean_rows(state[embed_key], grow)
        state[head_key] = _mean_rows(state[head_key], grow)
        vocab_size += grow
    text_config = {**text_config, "vocab_size": vocab_size, "pad_token_id": tokenizer.pad_token_id}
    template = _chat_template(tokenizer)
    tokenizer.chat_template = template

    # --- config and model (built on meta, weights assigned without a copy) ---
    image_size, patch = int(vision_config["image_size"]), int(vision_config["patch_size"])
    llm_dtype = state[embed_key].dtype
    config = hf.LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=image_token_id,
        image_seq_length=(image_size // patch) ** 2,
        projector_hidden_act=str(projector_config.get("hidden_act", "gelu")),
        multimodal_projector_bias=bool(projector_config.get("bias", True)),
        vision_feature_select_strategy="default",
        vision_feature_layer=VISION_FEATURE_LAYER,
        tie_word_embeddings=bool(text_config.get("tie_word_embeddings", False)),
    )
    config.dtype = llm_dtype
    with torch.device("meta"):
        model = hf.LlavaForConditionalGeneration(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise XTunerError(f"the converted weights do not fit a LLaVA model: {exc}") from None

    model.generation_config = _generation_config(parts.llm, tokenizer)
    image_processor_class = getattr(hf, "CLIPImageProcessorPil", None) or hf.CLIPImageProcessor
    image_processor = image_processor_class.from_pretrained(str(parts.image_processor))
    processor = hf.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
        chat_template=template,
    )

    from geodesk.engine.tiny import normalise_json_files

    out.mkdir(parents=True, exist_ok=True)
    try:
        model.save_pretrained(out, safe_serialization=True)
        processor.save_pretrained(out)
        normalise_json_files(out)
    except BaseException:
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise
    return out


def _generation_config(llm: Path, tokenizer: Any) -> Any:
    """The LLM's generation config, stopping on every end id it and Llama-3 use (end of turn, text)."""
    import transformers

    generation_config: Any = transformers.GenerationConfig
    config: Any
    if (llm / "generation_config.json").is_file():
        config = generation_config.from_pretrained(str(llm))
    else:
        config = generation_config(do_sample=False)
    eos = config.eos_token_id
    ids: list[int] = [eos] if isinstance(eos, int) else list(eos or [])
    vocab = tokenizer.get_vocab()
    for token in (*_END_IDS, tokenizer.eos_token):
        if token in vocab and vocab[token] not in ids:
            ids.append(int(vocab[token]))
    config.eos_token_id = ids
    config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token is not None:
        config.bos_token_id = tokenizer.bos_token_id
    return config
