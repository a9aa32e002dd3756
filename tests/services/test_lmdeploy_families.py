"""lmdeploy per family: what is served (a LLaVA export, a Qwen2.5-VL folder as it is), the refusals,
the probe of lmdeploy's environment, and the managed start / health check / stop of a Qwen2.5-VL package.

lmdeploy itself needs CUDA and its own environment, which a test machine lacks. Process management runs
against the same stand-in executable as tests/services/test_lmdeploy_server.py (a process answering
``GET /v1/models`` that records its arguments; not a model). The environment probe runs for real, in
this test environment's own interpreter (CPU torch, no lmdeploy). What only a GPU machine can show
(lmdeploy loading the folder and answering) is the ``bench/gpu_lmdeploy_families.py`` check.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from geodesk.services import lmdeploy_server as lm
from tests.services.test_lmdeploy_server import FAKE_LMDEPLOY, _free_port

NO_NVIDIA = not Path("/proc/driver/nvidia").exists()


def test_export_explains_how_lmdeploy_serves_other_families(
    tiny_family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(lm.LmdeployError, match=r"Qwen2\.5-VL model: lmdeploy loads its folder as it is"):
        lm.export_for_lmdeploy(tiny_family_dirs["qwen2_5_vl"], tmp_path / "qwen")
    not_started = "geodesk does not start on lmdeploy; serve it with `geodesk serve`"
    with pytest.raises(lm.LmdeployError, match=not_started):
        lm.export_for_lmdeploy(tiny_family_dirs["internvl"], tmp_path / "internvl")
    assert not (tmp_path / "qwen").exists() and not (tmp_path / "internvl").exists()


def test_a_qwen_package_is_served_from_its_folder_with_its_own_template(
    tiny_family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    qwen = tiny_family_dirs["qwen2_5_vl"]
    launch = lm.served_folder(tmp_path / "ws", qwen)
    assert launch == lm.LmdeployLaunch("qwen2_5_vl", qwen.resolve(), "hf")
    assert not (tmp_path / "ws" / "lmdeploy").exists()  # nothing exported or copied
    with pytest.raises(lm.LmdeployError, match="geodesk does not start on lmdeploy"):
        lm.served_folder(tmp_path / "ws", tiny_family_dirs["internvl"])


def test_a_llava_package_is_served_from_its_export_made_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = lm.served_folder(tmp_path / "ws", tiny_model_dir)
    assert first.family == "llava" and first.chat_template == str(first.model_dir / lm.CHAT_TEMPLATE_FILE)
    assert first.model_dir.parent == (tmp_path / "ws" / "lmdeploy" / "exports").resolve()
    made = first.model_dir.stat().st_mtime_ns
    again = lm.served_folder(tmp_path / "ws", tiny_model_dir)
    assert again == first and first.model_dir.stat().st_mtime_ns == made
    assert lm.served_folder(tmp_path / "other", first.model_dir) == first  # an export is served as is


def _renamed_copy(src: Path, dst: Path, rename: dict[str, str]) -> Path:
    """A copy of ``src`` whose weight keys have ``rename``'s prefixes replaced (same tensors)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "model.safetensors"))
    out = {}
    for key, tensor in tensors.items():
        for old, new in rename.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = tensor
    save_file(out, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def test_qwen_folders_lmdeploy_cannot_load_are_refused_with_what_to_do(
    tiny_family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    qwen = tiny_family_dirs["qwen2_5_vl"]
    in_memory = _renamed_copy(
        qwen, tmp_path / "in-memory", {"model.": "model.language_model.", "visual.": "model.visual."}
    )
    with pytest.raises(lm.LmdeployError, match=r"in-memory names .*save_pretrained\(\) it again"):
        lm.lmdeploy_launch(in_memory)
    foreign = _renamed_copy(qwen, tmp_path / "foreign", {"visual.": "vision_tower."})
    with pytest.raises(lm.LmdeployError, match=r"'vision_tower\..*' .* not part of a Qwen2\.5-VL checkpoint"):
        lm.lmdeploy_launch(foreign)
    no_template = tmp_path / "no-template"
    shutil.copytree(qwen, no_template)
    (no_template / "chat_template.jinja").unlink()
    with pytest.raises(lm.LmdeployError, match="has no chat template"):
        lm.lmdeploy_launch(no_template)
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "config.json").write_text(json.dumps({"model_type": "internvl_chat"}))
    with pytest.raises(lm.LmdeployError, match="trust_remote_code"):
        lm.lmdeploy_launch(tmp_path / "custom")


# ---------------------------------------------------------------- lmdeploy's environment


@pytest.fixture
def launcher_env(tmp_path: Path) -> Path:
    """An environment folder whose bin/python runs this test run's real interpreter (CPU torch, no
    lmdeploy): the probe reads a real environment. bin/lmdeploy exists so the folder counts as installed."""
    env = tmp_path / "cpu-env"
    (env / "bin").mkdir(parents=True)
    python = env / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (env / "bin" / "lmdeploy").write_text("#!/bin/sh\nexit 1\n")
    for exe in (python, env / "bin" / "lmdeploy"):
        exe.chmod(0o755)
    return env


def test_the_probe_reads_the_real_environment_and_refuses_it_without_lmdeploy(launcher_env: Path) -> None:
    import torch
    import transformers

    report = lm.probe_environment(launcher_env)
    assert report.torch == torch.__version__ and report.transformers == transformers.__version__
    assert report.lmdeploy is None and "ModuleNotFoundError" in report.errors["lmdeploy"]
    assert report.cuda is torch.cuda.is_available()
    with pytest.raises(lm.LmdeployError, match=r"lmdeploy does not import in lmdeploy's env.*install\.sh"):
        lm.require_usable_environment(report, launcher_env)


def test_an_environment_without_cuda_is_refused_plainly() -> None:
    cpu_build = lm.EnvironmentReport("3.11.9", "0.18.0", "5.23.0", "2.12.1", None, False, 0, {})
    with pytest.raises(lm.LmdeployError, match=r"torch 2\.12\.1 is a CPU build\. lmdeploy needs CUDA"):
        lm.require_usable_environment(cpu_build)
    no_device = lm.EnvironmentReport(
        "3.11.9", "0.18.0", "5.23.0", "2.12.1", "12.8", False, 0, {"cuda": "RuntimeError: driver too old"}
    )
    with pytest.raises(lm.LmdeployError, match=r"\(CUDA 12\.8\) finds no usable GPU \(RuntimeError: driver"):
        lm.require_usable_environment(no_device)
    usable = lm.EnvironmentReport("3.11.9", "0.18.0", "5.23.0", "2.12.1", "12.8", True, 1, {})
    assert lm.require_usable_environment(usable) is usable


def test_a_transformers_5_qwen_folder_needs_transformers_5_in_lmdeploys_environment(
    tiny_family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    launch = lm.lmdeploy_launch(tiny_family_dirs["qwen2_5_vl"])
    old = lm.EnvironmentReport("3.11.9", "0.18.0", "4.57.1", "2.12.1", "12.8", True, 1, {})
    new = lm.EnvironmentReport("3.11.9", "0.18.0", "5.23.0", "2.12.1", "12.8", True, 1, {})
    with pytest.raises(lm.LmdeployError, match=r"transformers 4\.57\.1 in lmdeploy's environment misreads"):
        lm.require_readable_config(launch, old)
    lm.require_readable_config(launch, new)
    # A folder in the published (transformers 4) style carries rope_scaling and reads right in both.
    published = tmp_path / "published"
    shutil.copytree(tiny_family_dirs["qwen2_5_vl"], published)
    config = json.loads((published / "config.json").read_text())
    config["text_config"]["rope_scaling"] = {"type": "mrope", "mrope_section": [2, 3, 3]}
    (published / "config.json").write_text(json.dumps(config))
    lm.require_readable_config(lm.lmdeploy_launch(published), old)


def test_cli_check_reports_the_probe_and_why_it_cannot_run(
    launcher_env: Path, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geodesk.cli import main

    assert main(["lmdeploy", "check", "--env", str(launcher_env), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ready"] is False and "lmdeploy does not import" in document["env_problem"]
    assert document["environment"]["torch"] and document["environment"]["lmdeploy"] is None


@pytest.mark.skipif(not NO_NVIDIA, reason="this machine has an NVIDIA driver")
def test_cli_start_of_a_qwen_package_refuses_without_a_gpu_and_starts_nothing(
    launcher_env: Path, workspace: Path, tiny_family_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from geodesk.cli import main

    monkeypatch.setenv("PATH", f"{launcher_env}:/usr/bin:/bin")  # no nvidia-smi
    qwen = str(tiny_family_dirs["qwen2_5_vl"])
    code = main(["lmdeploy", "start", "--model", qwen, "--env", str(launcher_env)])
    assert code == 1
    assert "no NVIDIA GPU is present" in capsys.readouterr().err
    assert not (workspace / "lmdeploy" / "server.json").exists()


# ---------------------------------------------------------------- the managed server, Qwen2.5-VL


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    env = tmp_path / "fake-env"
    (env / "bin").mkdir(parents=True)
    exe = env / "bin" / "lmdeploy"
    exe.write_text(textwrap.dedent(FAKE_LMDEPLOY).format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("FAKE_LMDEPLOY_ARGS", str(tmp_path / "args.json"))
    monkeypatch.setenv("FAKE_LMDEPLOY_DELAY", "0.3")
    return env


def test_start_status_stop_of_a_qwen_package(
    fake_env: Path, tiny_family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    qwen = tiny_family_dirs["qwen2_5_vl"].resolve()
    server = lm.LmdeployServer(tmp_path / "ws", env=fake_env)
    port = _free_port()
    record = server.start(qwen, port=port, model_name="qwen-geo", check_gpu=False, wait_s=60)
    try:
        args = json.loads((tmp_path / "args.json").read_text())
        assert args[:3] == ["serve", "api_server", str(qwen)]  # the installed folder itself
        for flag, value in (
            ("--server-name", "127.0.0.1"),
            ("--server-port", str(port)),
            ("--backend", "pytorch"),
            ("--model-name", "qwen-geo"),
            ("--chat-template", "hf"),  # the folder's own template, as the hf backend renders it
        ):
            assert args[args.index(flag) + 1] == value
        assert record.family == "qwen2_5_vl"
        saved = json.loads(server.pidfile.read_text())
        assert saved["family"] == "qwen2_5_vl" and saved["pid"] == record.pid
        status = server.status()
        assert status.running and status.healthy and status.record == record
        assert status.as_dict()["endpoint"] == f"http://127.0.0.1:{port}"
        assert server.stop(timeout_s=20) is True
        assert not lm.pid_alive(record.pid) and not server.pidfile.exists()
    finally:
        if lm.pid_alive(record.pid):
            os.kill(record.pid, 9)


def test_a_server_record_written_before_families_still_reads(tmp_path: Path) -> None:
    server = lm.LmdeployServer(tmp_path / "ws", env=tmp_path / "none")
    server.state_dir.mkdir(parents=True)
    old = {"pid": 1, "host": "127.0.0.1", "port": 1, "model": "m", "model_name": "m", "command": [],
           "log": "", "started_at": 0.0}
    server.pidfile.write_text(json.dumps(old))
    record = server.record()
    assert record is not None and record.family == "llava"
