"""The tiny model: real architecture, deterministic per seed, small, a valid untrained package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoProcessor, LlavaForConditionalGeneration

from geodesk.cli import main
from geodesk.engine.package import read_manifest, verify_package
from geodesk.engine.tiny import SPECIAL_TOKENS, create_tiny_model


def test_the_package_is_small_untrained_and_verifies(tiny_model_dir: Path) -> None:
    manifest = read_manifest(tiny_model_dir)
    assert manifest.untrained and manifest.provenance["seed"] == 0
    assert manifest.architecture == "LlavaForConditionalGeneration"
    assert verify_package(tiny_model_dir).ok
    assert not list(tiny_model_dir.glob("*.bin"))
    total = sum((tiny_model_dir / rel).stat().st_size for rel in manifest.files)
    assert total < 5_000_000
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja",
            "generation_config.json", "processor_config.json"} <= set(manifest.files)


def test_real_architecture_and_generation_config(tiny_model_dir: Path) -> None:
    model = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir, use_safetensors=True)
    config = model.config
    assert config.vision_config.model_type == "clip_vision_model"
    assert config.text_config.model_type == "llama"
    assert (config.text_config.num_attention_heads, config.text_config.num_key_value_heads) == (4, 2)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    tok = processor.tokenizer
    eot, eos = tok.convert_tokens_to_ids(["<|eot_id|>", "<|end_of_text|>"])
    assert sorted(model.generation_config.eos_token_id) == sorted([eot, eos])
    assert config.image_token_id == tok.convert_tokens_to_ids("<image>")
    assert config.text_config.vocab_size == len(tok)


def test_special_tokens_are_single_tokens_and_the_template_takes_image_parts(tiny_model_dir: Path) -> None:
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    tok = processor.tokenizer
    for special in SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1, special
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is this?"}]}],
        add_generation_prompt=True, tokenize=False,
    )
    assert text == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\nWhere is this?"
                    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    ids = tok('{"lat": 48.85, "lon": 2.35, "country": "France"}', add_special_tokens=False)["input_ids"]
    assert len(ids) < 30  # the corpus taught it the JSON answer shape


def test_same_seed_same_files_other_seed_other_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = create_tiny_model(tmp_path / "again", seed=0)
    assert again.files == read_manifest(tiny_model_dir).files
    other = create_tiny_model(tmp_path / "other", seed=1)
    assert other.files["model.safetensors"] != again.files["model.safetensors"]
    assert other.files["tokenizer.json"] == again.files["tokenizer.json"]


def test_cli_create_tiny_prints_one_json_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "create-tiny", str(tmp_path / "m"), "--seed", "3", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["untrained"] is True and document["seed"] == 3
    assert document["sha256"] == read_manifest(tmp_path / "m").identity_sha256

    assert main(["model", "create-tiny", str(tmp_path / "m"), "--json"]) == 1
    err = capsys.readouterr().err
    assert "not an empty folder" in err
