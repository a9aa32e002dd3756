"""The ``remote`` backend against ``geodesk serve`` (tiny model, 127.0.0.1): equality with the hf
backend, streaming, cancel, retries, a server gone mid-answer, and the endpoint pool."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from geodesk.engine.backends.base import Backend, BackendError, ChatMessage, GenerationSettings
from geodesk.engine.backends.hf import HFBackend
from geodesk.engine.backends.remote import (
    EndpointPool,
    EndpointUnavailableError,
    RemoteBackend,
    RemoteOptions,
    RetryInfo,
    ServerGoneError,
    open_remote,
    openai_messages,
    parse_endpoint,
)
from geodesk.services.serving import ChatServer, ServeConfig, ServeLimits, parse_chat_request
from tests.services.test_serving import WAIT_S, GatedBackend, first_turn, photo, wait_until

GREEDY = GenerationSettings(max_new_tokens=16)
FAST_RETRY = RemoteOptions(retries=6, backoff_s=0.01, max_backoff_s=0.05)


@pytest.fixture(scope="module")
def hf(tiny_model_dir: Path) -> HFBackend:
    return HFBackend(tiny_model_dir)


@pytest.fixture
def serve(hf: HFBackend) -> Iterator[Callable[..., ChatServer]]:
    servers: list[ChatServer] = []

    def start(backend: Any = None, port: int = 0, **config: Any) -> ChatServer:
        server = ChatServer(backend or hf, ServeConfig(host="127.0.0.1", port=port, **config))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.shutdown(abort_connections=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def conversation() -> list[ChatMessage]:
    """Two turns, two images: what an interactive session sends on its second turn."""
    return [
        *first_turn(),
        ChatMessage("assistant", '{"country": "France", "lat": 48.85, "lon": 2.35}'),
        ChatMessage(
            "user", "Hint: look at this crop <image>\nand the road markings.", (photo((10, 90, 200)),)
        ),
    ]


def test_messages_survive_the_round_trip_through_the_protocol() -> None:
    messages = conversation()
    payload = {"messages": openai_messages(messages)}
    parsed = parse_chat_request(payload, ServeLimits(), "m", max_images_per_message=2).messages
    # The hf backend drops one newline after each placeholder, so these render identically.
    assert [m.text.replace("<image>\n", "<image>") for m in parsed] == [
        m.text.replace("<image>\n", "<image>") for m in messages
    ]
    assert [len(m.images) for m in parsed] == [0, 1, 0, 1]
    assert parsed[1].images[0].tobytes() == messages[1].images[0].tobytes()  # PNG is lossless


def test_remote_greedy_answer_equals_the_hf_backend(serve: Callable[..., ChatServer], hf: HFBackend) -> None:
    server = serve()
    remote = RemoteBackend(server.url)
    assert isinstance(remote, Backend) and remote.name == "remote"
    assert (remote.identity.name, remote.identity.version, remote.identity.sha256) == (
        hf.identity.name,
        hf.identity.version,
        hf.identity.sha256,
    )
    assert remote.identity.path == server.url and remote.max_images_per_message == hf.max_images_per_message
    for messages in (first_turn(), conversation()):
        pieces: list[str] = []
        got = remote.generate(messages, GREEDY, on_token=pieces.append)
        hf.reset_cache()
        want = hf.generate(messages, GREEDY)
        assert got.text == want.text and "".join(pieces) == got.text
        assert (got.prompt_tokens, got.answer_tokens) == (want.prompt_tokens, want.answer_tokens)
        assert got.finish_reason == "length" and not got.cancelled
        assert got.time_to_first_token_s is not None and got.time_to_first_token_s <= got.total_time_s
        assert got.extra["usage_reported"] == 1 and got.extra["attempts"] == 1


def test_cancel_stops_the_remote_answer_and_the_server_generation(
    serve: Callable[..., ChatServer], hf: HFBackend
) -> None:
    gated = GatedBackend(hf)
    server = serve(gated)
    remote = RemoteBackend(server.url)
    cancel = threading.Event()
    pieces: list[str] = []

    def stop_after_three(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()

    result = remote.generate(first_turn(), GenerationSettings(max_new_tokens=1000), stop_after_three, cancel)
    assert result.cancelled and result.finish_reason == "cancelled"
    assert result.text == "".join(pieces) and len(pieces) >= 3
    wait_until(lambda: len(gated.results) == 1, "the server's generation to end")
    assert gated.results[0].cancelled and gated.results[0].answer_tokens < 1000


def test_server_gone_mid_answer_raises_with_the_partial_text(
    serve: Callable[..., ChatServer], hf: HFBackend
) -> None:
    gated = GatedBackend(hf)
    gated.hold_after_first_token = True
    server = serve(gated)
    remote = RemoteBackend(server.url, RemoteOptions(retries=0))
    pieces: list[str] = []

    def crash_server(piece: str) -> None:
        pieces.append(piece)
        server.abort_connections()  # every client socket reset, as when the process dies

    with pytest.raises(ServerGoneError, match="went away in the middle of the answer") as caught:
        remote.generate(first_turn(), GenerationSettings(max_new_tokens=50), on_token=crash_server)
    assert caught.value.partial_text == "".join(pieces) and len(pieces) == 1
    assert isinstance(caught.value, BackendError)
    gated.release.set()


def test_retries_reach_a_server_that_starts_late(serve: Callable[..., ChatServer]) -> None:
    port = free_port()
    retries: list[RetryInfo] = []

    def start_on_first_retry(info: RetryInfo) -> None:
        retries.append(info)
        if len(retries) == 1:
            serve(port=port)

    remote = RemoteBackend(f"http://127.0.0.1:{port}/v1", FAST_RETRY, on_retry=start_on_first_retry)
    assert retries and retries[0].attempt == 1 and "cannot connect" in retries[0].reason
    assert remote.identity.name == "tiny-llava"
    assert remote.generate(first_turn(), GenerationSettings(max_new_tokens=3)).answer_tokens == 3


def test_busy_server_503_is_retried_before_the_first_token(
    serve: Callable[..., ChatServer], hf: HFBackend
) -> None:
    gated = GatedBackend(hf)
    gated.start_gate.clear()
    server = serve(gated, limits=ServeLimits(queue_size=1), retry_after_s=0)
    first = RemoteBackend(server.url)
    second = RemoteBackend(server.url)
    outcomes: list[Any] = []
    threads = [
        threading.Thread(target=lambda b=b: outcomes.append(b.generate(first_turn(), GenerationSettings(4))))
        for b in (first, second)
    ]
    threads[0].start()
    assert gated.entered.wait(WAIT_S)
    threads[1].start()
    wait_until(lambda: server.worker.waiting == 1, "a queued request")
    retries: list[RetryInfo] = []

    def open_gate(info: RetryInfo) -> None:
        retries.append(info)
        gated.start_gate.set()
        wait_until(lambda: len(outcomes) == 2, "the two earlier requests to finish")

    third = RemoteBackend(server.url, FAST_RETRY, on_retry=open_gate)
    result = third.generate(first_turn(), GenerationSettings(max_new_tokens=4))
    assert result.answer_tokens == 4 and result.extra["attempts"] >= 2
    assert "HTTP 503" in retries[0].reason
    for thread in threads:
        thread.join(WAIT_S)
    assert len(outcomes) == 2


def test_unreachable_server_and_wrong_key_give_clear_errors(serve: Callable[..., ChatServer]) -> None:
    port = free_port()
    with pytest.raises(EndpointUnavailableError, match=rf"127.0.0.1:{port} did not answer after 2 attempt"):
        RemoteBackend(f"http://127.0.0.1:{port}", RemoteOptions(retries=1, backoff_s=0))
    server = serve(api_key="k")
    with pytest.raises(BackendError, match="needs an API key"):
        RemoteBackend(server.url)
    with pytest.raises(BackendError, match="API key was refused"):
        RemoteBackend(server.url, RemoteOptions(api_key="nope"))
    assert RemoteBackend(server.url, RemoteOptions(api_key="k")).identity.name == "tiny-llava"
    with pytest.raises(BackendError, match="not an http"):
        parse_endpoint("gpu1:8000")
    assert parse_endpoint("http://gpu1:8000/v1/") == ("http", "gpu1", 8000, "")


def test_server_side_limit_errors_are_not_retried(serve: Callable[..., ChatServer]) -> None:
    server = serve(limits=ServeLimits(max_tokens=8))
    retries: list[RetryInfo] = []
    remote = RemoteBackend(server.url, FAST_RETRY, on_retry=retries.append)
    with pytest.raises(BackendError, match=r"HTTP 400.*max_tokens 9 is above"):
        remote.generate(first_turn(), GenerationSettings(max_new_tokens=9))
    assert retries == []


def test_endpoint_pool_spreads_requests_and_fails_over(serve: Callable[..., ChatServer]) -> None:
    a, b = serve(), serve()
    pool = EndpointPool([a.url, b.url])
    assert isinstance(pool, Backend) and pool.identity.name == "tiny-llava"
    texts = {pool.generate(first_turn(), GenerationSettings(max_new_tokens=6)).text for _ in range(4)}
    assert len(texts) == 1  # same model, same greedy answer wherever it ran
    assert [s["completed"] for s in pool.stats()] == [2, 2]
    assert a.stats.as_dict()["completed"] == 2 and b.stats.as_dict()["completed"] == 2

    dead = f"http://127.0.0.1:{free_port()}"
    mixed = open_remote([dead, a.url], RemoteOptions(retries=0))
    assert isinstance(mixed, EndpointPool)
    for _ in range(3):
        assert mixed.generate(first_turn(), GenerationSettings(max_new_tokens=2)).answer_tokens == 2
    stats = {s["endpoint"]: s for s in mixed.stats()}
    assert stats[dead]["healthy"] is False and "Connection refused" in stats[dead]["last_error"]
    assert stats[a.url]["completed"] == 3


def test_least_busy_sends_concurrent_work_to_the_idle_endpoint(
    serve: Callable[..., ChatServer], hf: HFBackend
) -> None:
    held = GatedBackend(hf)
    held.start_gate.clear()
    a, b = serve(held), serve()
    pool = EndpointPool([a.url, b.url])
    background = threading.Thread(target=lambda: pool.generate(first_turn(), GenerationSettings(2)))
    background.start()
    assert held.entered.wait(WAIT_S)  # endpoint a is busy with the first call
    for _ in range(3):
        pool.generate(first_turn(), GenerationSettings(max_new_tokens=2))
    assert b.stats.as_dict()["completed"] == 3
    held.start_gate.set()
    background.join(WAIT_S)
    assert a.stats.as_dict()["completed"] == 1


def test_pool_refuses_endpoints_serving_different_models(
    serve: Callable[..., ChatServer], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from geodesk.engine.tiny import create_tiny_model

    other_dir = tmp_path / "other"
    create_tiny_model(other_dir, seed=1)
    other = HFBackend(other_dir)
    a, b = serve(), serve(other)
    with pytest.raises(BackendError, match="different models"):
        EndpointPool([a.url, b.url])
