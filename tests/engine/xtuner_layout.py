"""Build an XTuner LLaVA export from the tiny model, laid out as XTuner's ``to_xtuner_llava`` saves it.

The tiny LLaVA's weights are split back into the three parts XTuner trains: the LLM (HF Llama keys
``model.*`` / ``lm_head.*``), the CLIP vision encoder (``vision_model.*``: the keys transformers 4, which
XTuner pins, writes for ``CLIPVisionModel``) and the projector (``ProjectorModel``: ``model.0.*`` /
``model.2.*``). LoRA variants put peft adapters in ``llm_adapter/`` / ``visual_encoder_adapter/`` and
the base models in separate folders, as an XTuner LoRA run leaves them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

LLAMA3_TEMPLATE = (  # Llama-3-Instruct's own template shape: string content only
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
)


@dataclass
class Export:
    export: Path
    base_llm: Path | None  # outside the export (LoRA runs)
    base_clip: Path | None
    expected: Any  # the LlavaForConditionalGeneration the converted model must equal


def _save(tensors: dict[str, torch.Tensor], folder: Path, config: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in tensors.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def _write_tokenizer(tiny: Path, folder: Path, *, strip_image_token: bool) -> None:
    """The LLM tokenizer as XTuner saves it: no LLaVA processor fields, Llama-3's own chat template."""
    tok = json.loads((tiny / "tokenizer.json").read_text(encoding="utf-8"))
    if strip_image_token:  # XTuner's LLM tokenizer has no <image>: rename it to a reserved token
        reserved = "<|reserved_special_token_0|>"
        for entry in tok["added_tokens"]:
            if entry["content"] == "<image>":
                entry["content"] = reserved
        vocab = tok["model"]["vocab"]
        vocab[reserved] = vocab.pop("<image>")
    (folder / "tokenizer.json").write_text(json.dumps(tok), encoding="utf-8")
    config = json.loads((tiny / "tokenizer_config.json").read_text(encoding="utf-8"))
    for key in ("image_token", "processor_class", "extra_special_tokens"):
        config.pop(key, None)
    config["chat_template"] = LLAMA3_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def make_xtuner_export(
    tiny: Path,
    out: Path,
    *,
    llm_lora: bool = False,
    visual_lora: bool = False,
    strip_image_token: bool = False,
) -> Export:
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModel,
        LlamaConfig,
        LlamaForCausalLM,
        LlavaForConditionalGeneration,
    )

    model = LlavaForConditionalGeneration.from_pretrained(tiny).eval()
    state = model.state_dict()  # transformers-5 names: model.language_model.*, model.vision_tower.*, ...
    llm = {
        ("model." + k[len("model.language_model.") :]): v
        for k, v in state.items()
        if k.startswith("model.language_model.")
    }
    llm["lm_head.weight"] = state["lm_head.weight"]
    tower = "model.vision_tower."
    clip = {k[len(tower) :]: v for k, v in state.items() if k.startswith(tower)}
    projector = {
        k.replace("model.multi_modal_projector.linear_1.", "model.0.").replace(
            "model.multi_modal_projector.linear_2.", "model.2."
        ): v
        for k, v in state.items()
        if k.startswith("model.multi_modal_projector.")
    }

    text_config = model.config.text_config.to_dict() | {"architectures": ["LlamaForCausalLM"]}
    vision_config = model.config.vision_config.to_dict() | {"architectures": ["CLIPVisionModel"]}
    processor_config = json.loads((tiny / "processor_config.json").read_text(encoding="utf-8"))
    preprocessor = processor_config["image_processor"]

    export = out / "export"
    export.mkdir(parents=True)
    base_llm = base_clip = None

    # --- LLM: full weights in the export folder, or a LoRA adapter over a separate base ---
    llm_dir = export
    if llm_lora:
        from peft import LoraConfig, get_peft_model

        base_llm = out / "base-llm"
        llm_dir = base_llm
        module = LlamaForCausalLM(LlamaConfig(**model.config.text_config.to_dict()))
        module.load_state_dict(llm, strict=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            peft_model = get_peft_model(
                module,
                LoraConfig(
                    r=4,
                    lora_alpha=8,
                    target_modules=["q_proj", "v_proj", "down_proj"],
                    init_lora_weights=False,
                ),
            )
        peft_model.save_pretrained(str(export / "llm_adapter"))
        adapter_cfg = export / "llm_adapter" / "adapter_config.json"
        cfg = json.loads(adapter_cfg.read_text(encoding="utf-8"))
        cfg["base_model_name_or_path"] = str(base_llm)  # XTuner records the LLM path it trained on
        adapter_cfg.write_text(json.dumps(cfg), encoding="utf-8")
        merged = peft_model.merge_and_unload().state_dict()
        for key in llm:
            new = "model.language_model." + key[len("model.") :] if key.startswith("model.") else key
            state[new] = merged[key]
    _save(llm, llm_dir, text_config)
    _write_tokenizer(tiny, llm_dir, strip_image_token=strip_image_token)
    shutil.copyfile(tiny / "generation_config.json", llm_dir / "generation_config.json")

    # --- visual encoder: visual_encoder/, or visual_encoder_adapter/ over a separate base CLIP ---
    clip_legacy = {"vision_model." + k: v for k, v in clip.items()}  # transformers-4 key names
    clip_dir = export / "visual_encoder"
    if visual_lora:
        from peft import LoraConfig, get_peft_model

        base_clip = out / "base-clip"
        clip_dir = base_clip
        module = CLIPVisionModel(CLIPVisionConfig(**model.config.vision_config.to_dict()))
        module.load_state_dict(clip, strict=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(11)
            peft_model = get_peft_model(
                module,
                LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
            )
        adapter = export / "visual_encoder_adapter"
        peft_model.save_pretrained(str(adapter))
        # XTuner saved with transformers 4, whose CLIPVisionModel had a vision_model level.
        weights = load_file(str(adapter / "adapter_model.safetensors"))
        weights = {
            k.replace("base_model.model.", "base_model.model.vision_model.", 1): v for k, v in weights.items()
        }
        save_file(weights, str(adapter / "adapter_model.safetensors"), metadata={"format": "pt"})
        merged = peft_model.merge_and_unload().state_dict()
        for key in clip:
            state["model.vision_tower." + key] = merged[key]
    _save(clip_legacy, clip_dir, vision_config)
    (clip_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2), encoding="utf-8")

    # --- projector: XTuner's ProjectorModel ---
    _save(
        projector,
        export / "projector",
        {
            "architectures": ["ProjectorModel"],
            "auto_map": {
                "AutoConfig": "configuration_projector.ProjectorConfig",
                "AutoModel": "modeling_projector.ProjectorModel",
            },
            "model_type": "projector",
            "visual_hidden_size": model.config.vision_config.hidden_size,
            "llm_hidden_size": model.config.text_config.hidden_size,
            "depth": 2,
            "hidden_act": "gelu",
            "bias": True,
            "torch_dtype": "float32",
        },
    )

    model.load_state_dict(state, strict=True)
    return Export(export, base_llm, base_clip, model.eval())
