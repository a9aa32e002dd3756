"""XTuner LLaVA exports -> one llava-hf checkpoint: the converted model computes what the parts computed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from geodesk.engine.xtuner import XTunerError, convert_xtuner, is_xtuner_export, locate_parts
from tests.engine.xtuner_layout import Export, make_xtuner_export

MESSAGES = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "where is this taken"}]}]


def model_inputs(folder: Path) -> Any:
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    text = processor.apply_chat_template(MESSAGES, add_generation_prompt=True)
    return processor(images=image, text=text, return_tensors="pt")


def logits(model: Any, inputs: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits  # [1, T, V]


def load(folder: Path) -> Any:
    from transformers import LlavaForConditionalGeneration

    return LlavaForConditionalGeneration.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def full_export(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Export:
    """A fully fine-tuned LLM in the export folder, visual_encoder/, projector/; no <image> token."""
    return make_xtuner_export(tiny_model_dir, tmp_path_factory.mktemp("xtuner-full"), strip_image_token=True)


@pytest.fixture(scope="module")
def lora_export(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Export:
    """llm_adapter/ and visual_encoder_adapter/ over base models outside the export."""
    return make_xtuner_export(
        tiny_model_dir, tmp_path_factory.mktemp("xtuner-lora"), llm_lora=True, visual_lora=True
    )


def test_the_export_has_xtuners_layout(full_export: Export, lora_export: Export) -> None:
    root = full_export.export
    assert is_xtuner_export(root) and not is_xtuner_export(root / "visual_encoder")
    assert set(load_file(str(root / "projector" / "model.safetensors"))) == {
        "model.0.weight",
        "model.0.bias",
        "model.2.weight",
        "model.2.bias",
    }
    assert all(
        k.startswith("vision_model.") for k in load_file(str(root / "visual_encoder" / "model.safetensors"))
    )
    assert {p.name for p in lora_export.export.iterdir()} == {
        "llm_adapter",
        "visual_encoder_adapter",
        "projector",
    }


def test_full_export_converts_to_the_same_model(
    full_export: Export, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = convert_xtuner(full_export.export, tmp_path / "converted")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["vision_feature_layer"] == -2
    assert config["vision_feature_select_strategy"] == "default"
    assert config["projector_hidden_act"] == "gelu"
    vocab = full_export.expected.config.text_config.vocab_size
    # The LLM tokenizer had no <image>: it was added after the existing vocabulary.
    assert config["image_token_index"] == vocab and config["text_config"]["vocab_size"] == vocab + 1
    generation = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    ids = json.loads((tiny_model_dir / "generation_config.json").read_text(encoding="utf-8"))["eos_token_id"]
    assert set(ids) <= set(generation["eos_token_id"])  # <|eot_id|> and <|end_of_text|>
    assert "<|start_header_id|>" in (out / "chat_template.jinja").read_text(encoding="utf-8")

    converted_inputs, original_inputs = model_inputs(out), model_inputs(tiny_model_dir)
    assert torch.equal(converted_inputs.pixel_values, original_inputs.pixel_values)
    # Same prompt tokens; only the placeholder id differs (it is replaced by image features anyway).
    expected_ids = original_inputs.input_ids.clone()
    expected_ids[expected_ids == full_export.expected.config.image_token_index] = vocab
    assert torch.equal(converted_inputs.input_ids, expected_ids)

    got = logits(load(out), converted_inputs)  # [1, T, V + 1]
    want = logits(full_export.expected, original_inputs)  # [1, T, V]
    assert got.shape[-1] == want.shape[-1] + 1
    assert torch.equal(got[..., :vocab], want)


def test_lora_adapters_are_merged(lora_export: Export, tiny_model_dir: Path, tmp_path: Path) -> None:
    assert lora_export.base_clip is not None
    # The LLM base is found through adapter_config.json; the CLIP base is given (its adapter names none).
    out = convert_xtuner(
        lora_export.export, tmp_path / "converted", base_visual_encoder=lora_export.base_clip
    )
    inputs = model_inputs(out)
    got = logits(load(out), inputs)
    want = logits(lora_export.expected, inputs)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    untuned = logits(load(tiny_model_dir), inputs)
    assert (untuned - want).abs().max() > 1e-2  # the adapters did change the model


def test_missing_base_models_are_asked_for_by_flag(lora_export: Export, tmp_path: Path) -> None:
    with pytest.raises(XTunerError, match="pass that base visual encoder's folder with --visual-encoder"):
        locate_parts(lora_export.export)
    adapter_config = lora_export.export / "llm_adapter" / "adapter_config.json"
    saved = adapter_config.read_text(encoding="utf-8")
    try:
        data = json.loads(saved) | {"base_model_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct"}
        adapter_config.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(XTunerError, match=r"trained on meta-llama/Meta-Llama-3-8B-Instruct.*--llm PATH"):
            locate_parts(lora_export.export, base_visual_encoder=lora_export.base_clip)
    finally:
        adapter_config.write_text(saved, encoding="utf-8")


def test_frozen_parts_need_their_base_folders(full_export: Export, tmp_path: Path) -> None:
    export = tmp_path / "projector-only"
    (export / "projector").mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (export / "projector" / name).write_bytes((full_export.export / "projector" / name).read_bytes())
    with pytest.raises(XTunerError, match=r"LLM was frozen.*--llm PATH"):
        locate_parts(export)
    with pytest.raises(XTunerError, match=r"CLIP encoder was frozen.*--visual-encoder PATH"):
        locate_parts(export, base_llm=full_export.export)
    parts = locate_parts(
        export, base_llm=full_export.export, base_visual_encoder=full_export.export / "visual_encoder"
    )
    assert parts.llm == full_export.export.resolve() and parts.llm_adapter is None


def _projector_copy(full_export: Export, tmp_path: Path) -> Path:
    import shutil

    export = tmp_path / "export"
    shutil.copytree(full_export.export, export)
    return export


def test_a_projector_that_is_not_two_linear_layers_is_refused(full_export: Export, tmp_path: Path) -> None:
    export = _projector_copy(full_export, tmp_path)
    config_path = export / "projector" / "config.json"
    config_path.write_text(json.dumps(json.loads(config_path.read_text()) | {"depth": 3}))
    with pytest.raises(XTunerError, match="3-layer projector"):
        convert_xtuner(export, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parts_of_different_models_are_refused(full_export: Export, tmp_path: Path) -> None:
    export = _projector_copy(full_export, tmp_path)
    config_path = export / "projector" / "config.json"
    config_path.write_text(json.dumps(json.loads(config_path.read_text()) | {"llm_hidden_size": 4096}))
    with pytest.raises(XTunerError, match="LLM hidden size of 4096, the LLM model has 64"):
        convert_xtuner(export, tmp_path / "out")


def test_pickled_parts_are_refused(full_export: Export, tmp_path: Path) -> None:
    export = _projector_copy(full_export, tmp_path)
    (export / "projector" / "model.safetensors").rename(export / "projector" / "pytorch_model.bin")
    with pytest.raises(XTunerError, match=r"only pickled weights \(pytorch_model.bin\).*safetensors"):
        convert_xtuner(export, tmp_path / "out")
