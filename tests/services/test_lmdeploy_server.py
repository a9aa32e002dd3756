"""lmdeploy as the local engine: the export it loads, the clear errors, and process management.

lmdeploy itself needs CUDA and its own environment, neither of which a test machine has. The export is
checked by its files and by loading it back with transformers. Start / status / stop / pidfile logic is
tested against ``fake_lmdeploy``: a small executable script standing in for the lmdeploy CLI, ONLY to
exercise process management. It is a process that answers ``GET /v1/models`` on the requested port and
records its arguments; it is not a model and answers no completions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from geodesk.engine.backends.base import GenerationSettings
from geodesk.engine.backends.hf import HFBackend
from geodesk.engine.checkpoint import KeyNaming, checkpoint_keys, checkpoint_naming
from geodesk.services import lmdeploy_server as lm
from tests.services.test_serving import first_turn

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lmdeploy") / "tiny-llava-lmdeploy"
    result = lm.export_for_lmdeploy(tiny_model_dir, out)
    assert result.path == out
    return out


def _json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_export_has_legacy_keys_llama3_template_and_both_end_ids(
    exported: Path, tiny_model_dir: Path
) -> None:
    assert checkpoint_naming(exported) is KeyNaming.LEGACY
    keys = checkpoint_keys(exported)
    assert any(k.startswith("vision_tower.vision_model.") for k in keys)
    assert any(k.startswith("language_model.model.layers.") for k in keys)
    assert "language_model.lm_head.weight" in keys
    tokenizer = _json(exported / "tokenizer.json")
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}  # type: ignore[index, union-attr]
    generation = _json(exported / "generation_config.json")
    assert generation["eos_token_id"] == [ids["<|eot_id|>"], ids["<|end_of_text|>"]]
    template = (exported / "chat_template.jinja").read_text(encoding="utf-8")
    assert "<|start_header_id|>" in template and "<|eot_id|>" in template
    assert _json(exported / "tokenizer_config.json")["chat_template"] == template
    assert _json(exported / "chat_template.json")["chat_template"] == template
    assert _json(exported / lm.CHAT_TEMPLATE_FILE) == {
        "model_name": "llama3",
        "stop_words": ["<|eot_id|>", "<|end_of_text|>"],
    }
    config = _json(exported / "config.json")
    text_config = config["text_config"]
    assert isinstance(text_config, dict)
    assert text_config["rope_theta"] == 500000.0  # what transformers 4 (lmdeploy's env) reads
    assert config["image_token_index"] == _json(tiny_model_dir / "config.json")["image_token_index"]
    manifest = _json(exported / "geodesk-model.json")
    assert manifest["name"] == "tiny-llava"
    assert not list(exported.parent.glob(".tiny-llava-lmdeploy.*"))  # no staging folder left behind


def test_export_loads_back_and_answers_like_the_source(exported: Path, tiny_model_dir: Path) -> None:
    settings = GenerationSettings(max_new_tokens=10)
    source = HFBackend(tiny_model_dir).generate(first_turn(), settings)
    again = HFBackend(exported).generate(first_turn(), settings)
    assert again.text == source.text and again.prompt_tokens == source.prompt_tokens


def test_export_refuses_a_used_folder_and_a_non_llama3_template(tiny_model_dir: Path, tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("keep me")
    with pytest.raises(lm.LmdeployError, match="not empty"):
        lm.export_for_lmdeploy(tiny_model_dir, used)
    vicuna = tmp_path / "vicuna"
    shutil.copytree(tiny_model_dir, vicuna)
    (vicuna / "chat_template.jinja").write_text("{% for m in messages %}USER: {{ m['content'] }}{% endfor %}")
    with pytest.raises(lm.LmdeployError, match="not Llama-3's"):
        lm.export_for_lmdeploy(vicuna, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- environment and GPU


def test_missing_environment_names_the_installer(tmp_path: Path, exported: Path) -> None:
    missing = tmp_path / "no-env"
    with pytest.raises(lm.LmdeployError, match=r"not found at .*no-env: run installers/lmdeploy/install.sh"):
        lm.lmdeploy_executable(missing)
    server = lm.LmdeployServer(tmp_path / "ws", env=missing)
    with pytest.raises(lm.LmdeployError, match=r"installers/lmdeploy/install\.sh"):
        server.start(exported, check_gpu=False)
    assert not server.pidfile.exists()
    half = tmp_path / "half-env"
    (half / "bin").mkdir(parents=True)
    with pytest.raises(lm.LmdeployError, match="no runnable bin/lmdeploy"):
        lm.lmdeploy_executable(half)


def test_cli_start_without_environment_fails_with_the_hint(
    tmp_path: Path, workspace: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geodesk.cli import main

    code = main(["lmdeploy", "start", "--model", str(tiny_model_dir), "--env", str(tmp_path / "none")])
    assert code == 1
    assert "run installers/lmdeploy/install.sh" in capsys.readouterr().err
    assert not (workspace / "lmdeploy" / "exports").exists()  # checked before exporting anything


def test_no_gpu_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    report = lm.detect_nvidia_gpu(proc_path=tmp_path / "no-driver")
    assert not report.present and "no nvidia-smi" in report.detail
    with pytest.raises(lm.LmdeployError, match=r"no NVIDIA GPU is present.*use the hf backend"):
        lm.require_gpu(report)


@pytest.mark.skipif(Path("/proc/driver/nvidia").exists(), reason="this machine has an NVIDIA driver")
def test_installer_stops_plainly_without_a_gpu(tmp_path: Path) -> None:
    env_dir = tmp_path / "lmdeploy-env"
    script = REPO / "installers" / "lmdeploy" / "install.sh"
    done = subprocess.run(
        ["bash", str(script), "--env", str(env_dir), "--check-only"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"},  # no nvidia-smi on this PATH
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "NO NVIDIA GPU" in done.stderr and "Nothing was installed" in done.stderr
    assert not env_dir.exists()


# ---------------------------------------------------------------- process management


FAKE_LMDEPLOY = """\
#!{python}
# Stand-in for the lmdeploy CLI, for process-management tests only: not a model.
import http.server, json, os, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_LMDEPLOY_ARGS"], "w") as fh:
    json.dump(args, fh)
if os.environ.get("FAKE_LMDEPLOY_CRASH"):
    print("RuntimeError: CUDA driver initialization failed", flush=True)
    sys.exit(3)
port = int(args[args.index("--server-port") + 1])
name = args[args.index("--model-name") + 1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"object": "list", "data": [{{"id": name, "object": "model"}}]}}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
time.sleep(float(os.environ.get("FAKE_LMDEPLOY_DELAY", "0")))
print("HINT: Please open http://127.0.0.1:%d in a browser" % port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    env = tmp_path / "fake-env"
    (env / "bin").mkdir(parents=True)
    exe = env / "bin" / "lmdeploy"
    exe.write_text(textwrap.dedent(FAKE_LMDEPLOY).format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("FAKE_LMDEPLOY_ARGS", str(tmp_path / "args.json"))
    monkeypatch.setenv("FAKE_LMDEPLOY_DELAY", "0.3")  # answers only after a while, like a loading model
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_start_status_stop_with_pidfile(fake_env: Path, exported: Path, tmp_path: Path) -> None:
    server = lm.LmdeployServer(tmp_path / "ws", env=fake_env)
    port = _free_port()
    record = server.start(exported, port=port, model_name="geo", check_gpu=False, wait_s=60)
    try:
        args = json.loads((tmp_path / "args.json").read_text())
        assert args[:3] == ["serve", "api_server", str(exported)]
        for flag, value in (
            ("--server-name", "127.0.0.1"),
            ("--server-port", str(port)),
            ("--backend", "pytorch"),
            ("--model-name", "geo"),
            ("--chat-template", str(exported / lm.CHAT_TEMPLATE_FILE)),
        ):
            assert args[args.index(flag) + 1] == value
        saved = json.loads(server.pidfile.read_text())
        assert (
            saved["pid"] == record.pid
            and saved["port"] == port
            and record.endpoint == f"http://127.0.0.1:{port}"
        )
        status = server.status()
        assert status.running and status.healthy and status.record == record
        with pytest.raises(lm.LmdeployError, match="already running"):
            server.start(exported, port=_free_port(), check_gpu=False)
        # a second manager (another shell) finds the same server through the pidfile
        other = lm.LmdeployServer(tmp_path / "ws", env=fake_env)
        assert other.status().record == record
        assert other.stop(timeout_s=20) is True
        assert not lm.pid_alive(record.pid)
        assert not server.pidfile.exists()
        assert server.status().running is False
        assert server.stop() is False
    finally:
        if lm.pid_alive(record.pid):
            os.kill(record.pid, 9)


def test_a_crash_at_start_reports_the_log_and_clears_the_pidfile(
    fake_env: Path, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LMDEPLOY_CRASH", "1")
    server = lm.LmdeployServer(tmp_path / "ws", env=fake_env)
    with pytest.raises(lm.LmdeployError, match=r"exited with code 3(.|\n)*CUDA driver initialization failed"):
        server.start(exported, port=_free_port(), check_gpu=False, wait_s=60)
    assert not server.pidfile.exists()


def test_stale_pidfile_is_cleaned_and_bad_inputs_refused(
    fake_env: Path, exported: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    server = lm.LmdeployServer(tmp_path / "ws", env=fake_env)
    server.state_dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = lm.ServerRecord(dead.pid, "127.0.0.1", 1, str(exported), "x", ["lmdeploy"], "log", 0.0)
    from dataclasses import asdict

    server.pidfile.write_text(json.dumps(asdict(stale)))
    status = server.status()
    assert not status.running and "gone" in status.detail and not server.pidfile.exists()
    with pytest.raises(lm.LmdeployError, match=r"saved-v5 key names.*geodesk lmdeploy export"):
        server.start(tiny_model_dir, port=_free_port(), check_gpu=False)
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(lm.LmdeployError, match="is in use"):
            server.start(exported, port=busy.getsockname()[1], check_gpu=False)
    server.pidfile.write_text("{broken")
    with pytest.raises(lm.LmdeployError, match="damaged"):
        server.status()


def test_the_health_check_of_a_loopback_server_bypasses_http_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With http_proxy set, urllib would send GET 127.0.0.1/v1/models to the proxy; it must not."""
    import http.server
    import socket
    import threading

    class Models(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"data": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(4)
    proxy.settimeout(0.5)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        record = lm.ServerRecord(0, "127.0.0.1", httpd.server_address[1], "m", "m", [], "", 0.0)
        healthy, detail = lm.LmdeployServer(tmp_path, None)._health(record)
        assert healthy, detail
        with pytest.raises(TimeoutError):
            proxy.accept()  # nobody connected to the proxy
    finally:
        httpd.shutdown()
        proxy.close()
