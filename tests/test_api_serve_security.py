"""Streaming and timing defences against a real ``hpo serve`` (uvicorn) on 127.0.0.1 with a
token: a 45 MB body without the token is answered 401 while the client has sent only its first
kilobytes, an oversize body with the token is refused from its ``Content-Length`` alone, and a
large YAML spec being decoded does not stall ``/healthz``. Behavioural checks with generous
bounds, not benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hpo_service.store.db import dispose_engines, migrate
from tests.conftest import env_for, make_settings

TOKEN = "s3cret-token"
MIB = 1 << 20
HUGE = 45 * MIB
FIRST_PART = 16 * 1024  # all the client ever sends of the huge bodies


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("serve")
    cfg = make_settings(f"sqlite:///{root / 'hpo.db'}", root)
    migrate(cfg)
    env = {**env_for(cfg), "HPO_API_TOKEN": TOKEN, "HPO_LOG_LEVEL": "WARNING"}
    number, log = free_port(), root / "serve.log"
    command = [sys.executable, "-m", "hpo_service", "serve", "--port", str(number)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while not _up(number):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        yield number
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        dispose_engines()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _up(number: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{number}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def send_part(
    port: int, path: str, head: list[str], part: bytes
) -> tuple[int, dict[str, str], float, bool]:
    """Send the request head and only ``part`` of the body; returns the status, the headers,
    seconds until the answer, and whether the server then closed the connection."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *head, "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall("\r\n".join(lines).encode() + part)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {answer!r}"
            answer += chunk
        elapsed = time.monotonic() - started
        closed = _drained(sock)
    status_line, *header_lines = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    pairs = (line.split(": ", 1) for line in header_lines)
    headers = {name.lower(): value for name, value in pairs}
    return int(status_line.split()[1]), headers, elapsed, closed


def _drained(sock: socket.socket) -> bool:
    """Reads the rest of the answer; True once the server closes (EOF within the timeout)."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize(
    "framing",
    [[f"Content-Length: {HUGE}"], ["Transfer-Encoding: chunked"]],
    ids=["content-length", "chunked"],
)
@pytest.mark.parametrize(
    "auth", [[], ["Authorization: Bearer wrong"]], ids=["no-token", "wrong-token"]
)
@pytest.mark.parametrize("path", ["/api/studies/x/predict", "/api/studies"])
def test_a_45_mb_body_without_the_token_is_refused_before_it_is_sent(
    port: int, path: str, framing: list[str], auth: list[str]
) -> None:
    part = b"x" * FIRST_PART
    if framing[0].startswith("Transfer-Encoding"):
        part = f"{FIRST_PART:x}\r\n".encode() + part + b"\r\n"
    head = ["Content-Type: application/json", *framing, *auth]
    status, headers, elapsed, closed = send_part(port, path, head, part)
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert elapsed < 5, elapsed  # answered at once, not after a timeout
    assert headers["connection"] == "close" and closed  # it does not wait for the rest


def test_an_oversize_body_with_the_token_is_refused_from_its_length(port: int) -> None:
    head = ["Content-Type: application/json", f"Content-Length: {HUGE}",
            f"Authorization: Bearer {TOKEN}"]  # fmt: skip
    status, headers, elapsed, closed = send_part(port, "/api/studies", head, b"{" * FIRST_PART)
    assert status == 413 and elapsed < 5
    assert headers["connection"] == "close" and closed


def test_malformed_json_without_the_token_is_401(port: int) -> None:
    answer = httpx.post(
        f"http://127.0.0.1:{port}/api/studies/x/predict",
        content=b'{"inputs": [1, ',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 401 and answer.json()["detail"].startswith("missing bearer")


def test_healthz_answers_while_a_large_yaml_spec_is_decoded(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    # Seconds of pure-Python YAML parsing, yet within the 2 MB default body limit.
    text = "name: big\nnotes:\n" + "".join(f"  - {i}\n" for i in range(40_000))
    assert len(text) < 2 * MIB
    headers = {"Content-Type": "application/yaml", "Authorization": f"Bearer {TOKEN}"}
    outcome: dict[str, Any] = {}

    def create() -> None:
        outcome["answer"] = httpx.post(f"{base}/api/studies", content=text, headers=headers,
                                       timeout=300)  # fmt: skip

    creating = threading.Thread(target=create)
    latencies: list[float] = []
    with httpx.Client(base_url=base, timeout=60) as probe:  # one connection, as a prober keeps
        assert probe.get("/healthz").status_code == 200
        creating.start()
        while creating.is_alive():  # every probe that starts while the spec is being handled
            started = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)
    creating.join()
    assert outcome["answer"].status_code == 422, outcome["answer"].text  # notes: unknown key
    assert len(latencies) >= 3, latencies  # the spec took long enough to prove something
    assert max(latencies) < 1.0, latencies
