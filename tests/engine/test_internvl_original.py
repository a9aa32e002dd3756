"""The converter from the original InternVL layout (OpenGVLab's remote-code ``InternVLChatModel``) to the
transformers-native ``-hf`` layout.

The fixture is a tiny checkpoint written in the original layout from that layout's own module tree, as
OpenGVLab's ``modeling_internvl_chat.py`` / ``modeling_intern_vit.py`` define it: ``vision_model``
(InternViT: ``embeddings.class_embedding``, ``patch_embedding``, ``position_embedding``;
``encoder.layers.i.attn.qkv`` / ``attn.proj`` / ``norm1`` / ``norm2`` / ``ls1`` / ``ls2`` /
``mlp.fc1`` / ``mlp.fc2``), ``mlp1`` (``nn.Sequential(LayerNorm, Linear, GELU, Linear)`` -> indices 0,
1, 3) and ``language_model`` (a real transformers ``Qwen2ForCausalLM``), with an ``internvl_chat``
config.json. It is not made by inverting the converter's mapping. The image features of the converted
model are compared with the original forward written out from that same code (InternViT layers,
class token dropped, pixel shuffle v2, ``mlp1``), so a wrong split or a misplaced weight shows.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (the name the original code uses)

from geodesk.engine.families import FamilyError, detect_family
from geodesk.engine.internvl_original import InternVLConversionError, convert_original_internvl

VISION = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
          "image_size": 56, "patch_size": 14, "layer_norm_eps": 1e-6}
TEXT_HIDDEN = 64


def _original_tokenizer() -> Any:
    from geodesk.engine.families.tiny import END_OF_TEXT, IM_END, IM_START, build_chatml_tokenizer

    # InternVL's tokenizer: the LLM's ChatML specials plus <img>, </img> and <IMG_CONTEXT> (no <video>).
    specials = (END_OF_TEXT, IM_START, IM_END, "<img>", "</img>", "<IMG_CONTEXT>")
    return build_chatml_tokenizer(specials, {}, "")


def write_original_internvl(folder: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A tiny InternVLChatModel checkpoint in the original layout; returns its tensors."""
    import transformers
    from safetensors.torch import save_file

    hf: Any = transformers
    folder.mkdir(parents=True)
    tokenizer = _original_tokenizer()
    tokenizer.save_pretrained(folder)
    vocab = len(tokenizer) + 8  # Qwen pads its embedding matrix beyond the tokenizer, as here
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in ("<|endoftext|>", "<|im_end|>")}
    llm_config = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": TEXT_HIDDEN,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "vocab_size": vocab,
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "tie_word_embeddings": False,
        "hidden_act": "silu", "torch_dtype": "float32",
    }
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 0.05, base: float = 0.0) -> torch.Tensor:
        return base + scale * torch.randn(*shape, generator=generator)

    c, inner = VISION["hidden_size"], VISION["intermediate_size"]
    patches = (VISION["image_size"] // VISION["patch_size"]) ** 2
    tensors: dict[str, torch.Tensor] = {
        "vision_model.embeddings.class_embedding": rand(1, 1, c),
        "vision_model.embeddings.patch_embedding.weight": rand(c, 3, *(VISION["patch_size"],) * 2),
        "vision_model.embeddings.patch_embedding.bias": rand(c),
        "vision_model.embeddings.position_embedding": rand(1, patches + 1, c),
    }
    for i in range(VISION["num_hidden_layers"]):
        p = f"vision_model.encoder.layers.{i}."
        tensors |= {
            p + "attn.qkv.weight": rand(3 * c, c, scale=0.2), p + "attn.qkv.bias": rand(3 * c),
            p + "attn.proj.weight": rand(c, c, scale=0.2), p + "attn.proj.bias": rand(c),
            p + "mlp.fc1.weight": rand(inner, c, scale=0.2), p + "mlp.fc1.bias": rand(inner),
            p + "mlp.fc2.weight": rand(c, inner, scale=0.2), p + "mlp.fc2.bias": rand(c),
            p + "norm1.weight": rand(c, base=1.0), p + "norm1.bias": rand(c),
            p + "norm2.weight": rand(c, base=1.0), p + "norm2.bias": rand(c),
            p + "ls1": rand(c, base=0.1), p + "ls2": rand(c, base=0.1),
        }
    shuffled = c * 4  # pixel shuffle 0.5 folds 2x2 patches into the channels
    tensors |= {
        "mlp1.0.weight": rand(shuffled, base=1.0), "mlp1.0.bias": rand(shuffled),
        "mlp1.1.weight": rand(TEXT_HIDDEN, shuffled, scale=0.2), "mlp1.1.bias": rand(TEXT_HIDDEN),
        "mlp1.3.weight": rand(TEXT_HIDDEN, TEXT_HIDDEN, scale=0.2), "mlp1.3.bias": rand(TEXT_HIDDEN),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = {k: v for k, v in llm_config.items() if k != "architectures"}
        llm = hf.Qwen2ForCausalLM(hf.Qwen2Config(**text))
    tensors |= {f"language_model.{k}": v.detach().clone() for k, v in llm.state_dict().items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    config = {
        "architectures": ["InternVLChatModel"],
        "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                     "AutoModel": "modeling_internvl_chat.InternVLChatModel",
                     "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel"},
        "model_type": "internvl_chat", "downsample_ratio": 0.5, "dynamic_image_size": True,
        "force_image_size": VISION["image_size"], "max_dynamic_patch": 1, "min_dynamic_patch": 1,
        "ps_version": "v2", "select_layer": -1, "template": "internvl2_5", "use_thumbnail": True,
        "vision_config": {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", **VISION,
                          "qkv_bias": True, "qk_normalization": False, "norm_type": "layer_norm",
                          "hidden_act": "gelu", "initializer_factor": 0.1, "drop_path_rate": 0.0,
                          "num_channels": 3, "use_flash_attn": False},
        "llm_config": llm_config,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": ids["<|im_end|>"]}))
    # The publisher's model code: a converter that ran it would fail here.
    (folder / "modeling_internvl_chat.py").write_text("raise SystemExit('publisher code must never run')\n")
    return tensors


def original_image_features(t: dict[str, torch.Tensor], pixel_values: torch.Tensor) -> torch.Tensor:
    """The original extract_feature: InternViT (pre-norm layers with layer scale), drop the class token,
    pixel shuffle v2 at 0.5, then mlp1. (B, 3, 56, 56) -> (B, 4, TEXT_HIDDEN)."""
    c, heads, eps = VISION["hidden_size"], VISION["num_attention_heads"], VISION["layer_norm_eps"]
    e = "vision_model.embeddings."
    x = F.conv2d(pixel_values, t[e + "patch_embedding.weight"], t[e + "patch_embedding.bias"],
                 stride=VISION["patch_size"])  # (B, C, 4, 4)
    b = x.shape[0]
    x = torch.cat([t[e + "class_embedding"].expand(b, 1, c), x.flatten(2).transpose(1, 2)], dim=1)
    x = x + t[e + "position_embedding"]  # (B, 17, C); same grid as trained: no interpolation
    n = x.shape[1]
    for i in range(VISION["num_hidden_layers"]):
        p = f"vision_model.encoder.layers.{i}."
        y = F.layer_norm(x, (c,), t[p + "norm1.weight"], t[p + "norm1.bias"], eps)
        qkv = F.linear(y, t[p + "attn.qkv.weight"], t[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q * (c // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, n, c)
        y = F.linear(y, t[p + "attn.proj.weight"], t[p + "attn.proj.bias"])
        x = x + y * t[p + "ls1"]
        y = F.layer_norm(x, (c,), t[p + "norm2.weight"], t[p + "norm2.bias"], eps)
        y = F.linear(F.gelu(F.linear(y, t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"])),
                     t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"])
        x = x + y * t[p + "ls2"]
    x = x[:, 1:, :]
    side = int(math.sqrt(x.shape[1]))
    x = x.reshape(b, side, side, c)
    # pixel_shuffle(scale 0.5), ps_version v2
    nb, w, h, ch = x.shape
    x = x.view(nb, w, h // 2, ch * 2).permute(0, 2, 1, 3).contiguous()
    x = x.view(nb, h // 2, w // 2, ch * 4).permute(0, 2, 1, 3).contiguous()
    x = x.reshape(nb, -1, ch * 4)
    x = F.layer_norm(x, (ch * 4,), t["mlp1.0.weight"], t["mlp1.0.bias"])  # nn.LayerNorm default eps
    x = F.gelu(F.linear(x, t["mlp1.1.weight"], t["mlp1.1.bias"]))
    x = F.linear(x, t["mlp1.3.weight"], t["mlp1.3.bias"])
    return x


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    folder = tmp_path_factory.mktemp("internvl-original") / "InternVL3-tiny"
    return folder, write_original_internvl(folder)


@pytest.fixture(scope="module")
def converted(
    original: tuple[Path, dict[str, torch.Tensor]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("internvl-hf") / "InternVL3-tiny-hf"
    assert convert_original_internvl(original[0], out) == out
    return out


def test_the_original_layout_is_refused_with_the_converter_named(
    original: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    with pytest.raises(FamilyError, match=r"trust_remote_code.*geodesk model convert-internvl SRC OUT_DIR"):
        detect_family(original[0])


def test_every_weight_lands_where_the_hf_model_reads_it(
    original: tuple[Path, dict[str, torch.Tensor]], converted: Path
) -> None:
    import transformers

    t = original[1]
    assert detect_family(converted).name == "internvl"
    assert not list(converted.glob("*.py"))  # no publisher code is carried over
    loader: Any = transformers.InternVLForConditionalGeneration
    model, info = loader.from_pretrained(converted, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    state = model.state_dict()
    c = VISION["hidden_size"]
    qkv = t["vision_model.encoder.layers.1.attn.qkv.weight"]
    layer = "model.vision_tower.encoder.layer.1."
    for name, rows in (("q", slice(0, c)), ("k", slice(c, 2 * c)), ("v", slice(2 * c, 3 * c))):
        assert torch.equal(state[f"{layer}attention.{name}_proj.weight"], qkv[rows])
        assert torch.equal(state[f"{layer}attention.{name}_proj.bias"],
                           t["vision_model.encoder.layers.1.attn.qkv.bias"][rows])
    pairs = {
        "model.vision_tower.embeddings.cls_token": "vision_model.embeddings.class_embedding",
        "model.vision_tower.embeddings.position_embeddings": "vision_model.embeddings.position_embedding",
        f"{layer}lambda_2": "vision_model.encoder.layers.1.ls2",
        f"{layer}layernorm_before.weight": "vision_model.encoder.layers.1.norm1.weight",
        f"{layer}attention.projection_layer.weight": "vision_model.encoder.layers.1.attn.proj.weight",
        "model.multi_modal_projector.layer_norm.weight": "mlp1.0.weight",
        "model.multi_modal_projector.linear_2.bias": "mlp1.3.bias",
        "model.language_model.embed_tokens.weight": "language_model.model.embed_tokens.weight",
        "lm_head.weight": "language_model.lm_head.weight",
    }
    for hf_name, original_name in pairs.items():
        assert torch.equal(state[hf_name], t[original_name]), hf_name
    config = model.config
    assert config.image_seq_length == 4 and config.vision_feature_layer == -1
    assert config.text_config.rope_parameters["rope_theta"] == 1000000.0


def test_the_image_features_equal_the_original_forward(
    original: tuple[Path, dict[str, torch.Tensor]], converted: Path
) -> None:
    import transformers
    from PIL import Image

    from geodesk.engine.families.processors import StillInternVLProcessor, load_still_processor

    hf: Any = transformers
    processor = load_still_processor(StillInternVLProcessor, converted, hf.GotOcr2ImageProcessorPil,
                                     image_seq_length=4)
    image = Image.radial_gradient("L").convert("RGB").resize((80, 60))
    pixels = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]  # (1, 3, 56, 56)
    model = hf.InternVLForConditionalGeneration.from_pretrained(converted).eval()
    with torch.no_grad():
        ours = model.get_image_features(pixel_values=pixels, vision_feature_layer=-1,
                                        vision_feature_select_strategy="default").pooler_output
        theirs = original_image_features(original[1], pixels)
    assert ours.shape == theirs.shape == (1, 4, TEXT_HIDDEN)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_the_converted_folder_installs_and_answers_an_image_turn(converted: Path, tmp_path: Path) -> None:
    from PIL import Image

    from geodesk.engine.backends.base import ChatMessage, GenerationSettings
    from geodesk.engine.backends.hf import HFBackend
    from geodesk.engine.registry import ModelRegistry

    installed = ModelRegistry(tmp_path / "ws").install(converted, name="internvl3-tiny", version="1")
    assert installed.family == "internvl" and installed.profile == "generic"
    backend = HFBackend(installed.path)
    image = Image.new("RGB", (64, 48), (40, 120, 200))
    result = backend.generate([ChatMessage("user", "<image>\nWhere is this?", (image,))],
                              GenerationSettings(max_new_tokens=6))
    assert result.answer_tokens == 6 and result.prompt_tokens > 4  # four image tokens plus the text


def test_folders_the_hf_format_cannot_hold_are_refused_and_nothing_is_written(
    original: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path
) -> None:
    def variant(name: str, change: dict[str, Any]) -> Path:
        folder = tmp_path / name
        shutil.copytree(original[0], folder)
        config = json.loads((folder / "config.json").read_text())
        for key, value in change.items():
            if key.startswith("llm_config."):
                config["llm_config"][key.split(".", 1)[1]] = value
            else:
                config[key] = value
        (folder / "config.json").write_text(json.dumps(config))
        return folder

    cases = {
        "v1": ({"ps_version": "v1"}, "only the v2 pixel shuffle"),
        "internlm2": ({"llm_config.model_type": "internlm2"}, r"'internlm2', which transformers does not"),
    }
    for name, (change, message) in cases.items():
        with pytest.raises(InternVLConversionError, match=message):
            convert_original_internvl(variant(name, change), tmp_path / f"out-{name}")
        assert not (tmp_path / f"out-{name}").exists()
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(InternVLConversionError, match="not empty"):
        convert_original_internvl(original[0], used)
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    native = tmp_path / "native"
    native.mkdir()
    (native / "config.json").write_text(json.dumps({"model_type": "internvl"}))
    with pytest.raises(InternVLConversionError, match="does not describe an original InternVL"):
        convert_original_internvl(native, tmp_path / "out-native")


def test_cli_convert_then_install(
    original: tuple[Path, dict[str, torch.Tensor]], workspace: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from geodesk.cli import main

    assert main(["model", "install", str(original[0])]) == 1
    assert "geodesk model convert-internvl" in capsys.readouterr().err
    out = tmp_path / "hf"
    assert main(["model", "convert-internvl", str(original[0]), str(out), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["path"] == str(out) and document["family"] == "internvl" and document["weights"] > 40
    assert main(["model", "install", str(out), "--json"]) == 0
