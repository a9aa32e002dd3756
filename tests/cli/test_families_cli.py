"""Every model family through the CLI: create-tiny, install with a profile, list, verify, locate, hint
without repeating --model, batch, replay, and serve through the real ``openai`` client."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from geodesk.cli import main

FAMILIES = ["llava", "qwen2_5_vl", "qwen3_vl", "internvl"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def _case(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[str, list[str]]:
    code, created, _ = _run(capsys, "case", "new", "Families", "--json")
    assert code == 0
    shas = []
    for i, colour in enumerate(((200, 180, 150), (20, 90, 200))):
        image = tmp_path / f"street-{i}.jpg"
        Image.new("RGB", (64, 48), colour).save(image)
        code, added, _ = _run(capsys, "evidence", "add", created["id"], str(image), "--json")
        assert code == 0, added
        shas.append(added["imported"][0]["sha256"])
    return created["id"], shas


@pytest.mark.parametrize("family", FAMILIES)
def test_the_whole_loop_runs_on_every_family(
    family: str, workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = tmp_path / f"tiny-{family}"
    code, made, _ = _run(capsys, "model", "create-tiny", str(tiny), "--family", family, "--json")
    assert code == 0 and made["family"] == family and made["untrained"]
    profile = "globe" if family == "qwen2_5_vl" else None  # GLOBE's Qwen checkpoints use globe
    extra = ["--profile", profile] if profile else []
    code, installed, err = _run(capsys, "model", "install", str(tiny), "--json", *extra)
    assert code == 0, err
    expected_profile = profile or ("gaga" if family == "llava" else "generic")
    assert (installed["family"], installed["profile"]) == (family, expected_profile)
    code, listed, _ = _run(capsys, "model", "list", "--json")
    assert [(m["family"], m["profile"], m["active"]) for m in listed["models"]] == [
        (family, expected_profile, True)
    ]
    main(["model", "list"])
    human = capsys.readouterr().out
    assert family in human and expected_profile in human
    code, verified, _ = _run(capsys, "model", "verify", "--json")
    assert code == 0 and verified["ok"]

    case_id, shas = _case(capsys, tmp_path)
    short = ["--max-new-tokens", "6", "--json"]
    code, located, err = _run(capsys, "locate", case_id, shas[0][:10], *short)  # the active model
    assert code == 0, err
    assert located["model"]["profile"] == expected_profile
    assert located["protocol_version"].startswith(f"geodesk-{expected_profile}/")

    # A later turn continues on the session's own model without --model, even after another
    # model became the workspace default.
    other = tmp_path / "other-llava"
    assert main(["model", "create-tiny", str(other), "--seed", "3"]) == 0
    assert main(["model", "install", str(other), "--name", "other", "--activate"]) == 0
    capsys.readouterr()
    session = str(located["session"])
    code, hinted, err = _run(capsys, "hint", session, "--kind", "prior", "--text", "Kenya", *short)
    assert code == 0, err
    assert hinted["turn"] == 2 and hinted["model"]["sha256"] == located["model"]["sha256"]
    assert hinted["timing"]["cached_prompt_tokens"] == 0  # a new process: no cache yet
    code, shown, _ = _run(capsys, "session", "show", session, "--json")
    assert [t["turn"] for t in shown["turns"]] == [1, 2]  # turns count from 1
    assert "Kenya" in shown["turns"][1]["prompt"]

    code, replayed, err = _run(capsys, "session", "replay", session, "--model", installed["ref"], *short)
    assert code == 0, err
    assert [t["status"] for t in replayed["turns"]] == ["done", "done"]

    code, batch, err = _run(capsys, "batch", case_id, "--model", installed["ref"], *short)
    assert code == 0, err
    assert batch["total"] == 2 and not batch["failed"]


def test_a_session_whose_model_is_gone_or_changed_names_the_model_it_needs(
    tiny_family_dirs: dict[str, Path], workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "qwen-copy"
    shutil.copytree(tiny_family_dirs["qwen2_5_vl"], folder)
    case_id, shas = _case(capsys, tmp_path)
    short = ["--max-new-tokens", "4", "--json"]
    code, located, err = _run(capsys, "locate", case_id, shas[0][:10], "--model", str(folder), *short)
    assert code == 0, err
    session = str(located["session"])
    code, _, err = _run(capsys, "hint", session, "--kind", "prior", "--text", "Chile", *short)
    assert code == 0, err  # the recorded folder, unchanged
    with (folder / "generation_config.json").open("a") as fh:
        fh.write("\n")
    code, _, err = _run(capsys, "hint", session, "--kind", "prior", "--text", "Peru", *short)
    assert code != 0
    assert "tiny-qwen2-5-vl@0.0.0" in err and "different files" in err and "geodesk model install" in err
    shutil.rmtree(folder)
    code, _, err = _run(capsys, "hint", session, "--kind", "prior", "--text", "Peru", *short)
    assert code != 0 and "no longer installed" in err


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "internvl"])
def test_geodesk_serve_answers_the_openai_client_for_every_family(
    family: str, tiny_family_dirs: dict[str, Path]
) -> None:
    openai = pytest.importorskip("openai")
    import base64
    import io

    from geodesk.engine.backends.hf import HFBackend
    from geodesk.services.serving import ChatServer, ServeConfig

    backend = HFBackend(tiny_family_dirs[family])
    server = ChatServer(backend, ServeConfig(host="127.0.0.1", port=0)).start()
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        models = client.models.list()
        served = models.data[0]
        assert served.id == backend.identity.name
        assert served.model_extra["geodesk"]["profile"] == "generic"
        buffer = io.BytesIO()
        Image.new("RGB", (60, 40), (10, 120, 30)).save(buffer, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        messages: Any = [
            {"role": "system", "content": "You are a geolocation analyst."},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": "Where was this photo taken?"},
            ]},
        ]
        reply = client.chat.completions.create(
            model=served.id, messages=messages, max_tokens=5, temperature=0
        )
        assert reply.usage is not None and reply.usage.completion_tokens == 5
        stream = client.chat.completions.create(
            model=served.id, messages=messages, max_tokens=5, temperature=0, stream=True
        )
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert streamed == reply.choices[0].message.content
        from geodesk.engine.backends.remote import RemoteBackend, RemoteOptions

        # geodesk's own client adopts the profile the server reports; --profile overrides it.
        assert RemoteBackend(server.url, RemoteOptions(retries=0)).profile == "generic"
        assert RemoteBackend(server.url, RemoteOptions(retries=0, profile="globe")).profile == "globe"
    finally:
        server.shutdown(abort_connections=True)
        backend.close()
