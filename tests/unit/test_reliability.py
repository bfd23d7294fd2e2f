"""The reliability layer against a real HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from cpw_resources.services.reliability import (
    Policy,
    Reliability,
    ServiceError,
    http_client,
    redact,
)
from tests.fake_service import fake_service, hang, malformed, ok, reset, status
from tests.trickle_server import trickle_server

SECRET = "sk-test-abcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture
def server():
    with fake_service() as service:
        yield service


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def layer(tmp_path: Path, waits: list[float]):
    events: list[dict] = []
    rel = Reliability(tmp_path / "breakers", Policy(fail_max=50, reset_timeout_s=0.5),
                      on_event=events.append, sleep=waits.append)
    rel.events = events
    return rel


def _get(server, read_timeout: float = 2.0):
    return _get_with(server.url, read_timeout)


def _get_with(url: str, read_timeout: float = 2.0):
    def call():
        with http_client(httpx, connect_s=1.0, read_s=read_timeout,
                         headers={"Authorization": f"Bearer {SECRET}"}) as client:
            response = client.get(url + "/v1/thing")
            response.raise_for_status()
            return response.json()
    return call


def test_rate_limit_honours_retry_after(server, layer, waits):
    server.program(status(429, retry_after="3"), status(429, x_ratelimit_reset="1.5s"), ok())
    assert layer.call("openai", "chat", _get(server)) == {"ok": True}
    assert waits == [3.0, 1.5]
    assert layer.events[-1]["attempts"] == 3 and layer.events[-1]["outcome"] == "ok"


def test_rate_limit_gives_up_after_five_retries(server, layer, waits):
    server.program(status(429, retry_after="1"))
    with pytest.raises(ServiceError) as info:
        layer.call("openai", "chat", _get(server))
    assert info.value.kind == "rate_limit" and info.value.attempts == 6
    assert len(server.requests) == 6


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_errors_retry_three_times_with_backoff(server, layer, waits, code):
    server.program(status(code))
    with pytest.raises(ServiceError) as info:
        layer.call("tmdb", "search", _get(server))
    assert info.value.kind == "server" and info.value.status == code
    assert len(server.requests) == 4
    assert len(waits) == 3 and waits[0] < waits[1] < waits[2] <= 30  # exponential with jitter
    server.program(status(code), ok())
    assert layer.call("tmdb", "search", _get(server)) == {"ok": True}


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (status(401, {"error": f"invalid api key {SECRET}"}), "auth"),
        (status(403), "auth"),
        (status(429, {"error": {"type": "insufficient_quota",
                                "message": "You exceeded your current quota"}}), "quota"),
        (status(404), "client"),
        (status(400), "client"),
    ],
)
def test_no_retry_for_auth_quota_and_other_4xx(server, layer, waits, fault, kind):
    server.program(fault)
    with pytest.raises(ServiceError) as info:
        layer.call("openai", "chat", _get(server))
    assert info.value.kind == kind and len(server.requests) == 1 and waits == []
    assert SECRET not in str(info.value) and SECRET[:12] not in str(info.value)


def test_connection_reset_is_a_network_error_retried(server, layer, waits):
    server.program(reset(), reset(), ok())
    assert layer.call("anthropic", "messages", _get(server)) == {"ok": True}
    assert len(server.requests) == 3


def test_hung_server_ends_within_the_timeout_budget(server, layer):
    server.program(hang(30))
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        layer.call("openai", "chat", _get(server, read_timeout=0.3))
    assert info.value.kind == "timeout" and info.value.attempts == 4
    assert time.monotonic() - started < 4  # 4 attempts × 0.3 s, the waits are recorded only


def test_malformed_json_is_retried_once_then_reported(server, layer):
    server.program(malformed())
    with pytest.raises(ServiceError) as info:
        layer.call("openai", "chat", _get(server))
    assert info.value.kind == "malformed" and len(server.requests) == 2


def test_breaker_opens_fails_fast_across_processes_and_recovers(server, tmp_path):
    waits: list[float] = []
    events: list[dict] = []
    rel = Reliability(tmp_path / "breakers", Policy(fail_max=3, reset_timeout_s=1.0),
                      on_event=events.append, sleep=waits.append)
    # Another process, started (imports done) before the breaker opens, calls once told to.
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from cpw_resources.services.reliability import Reliability, Policy, ServiceError\n"
        f"rel = Reliability(Path({str(tmp_path / 'breakers')!r}), Policy(fail_max=3,"
        " reset_timeout_s=1.0))\n"
        "sys.stdin.readline()\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    rel.call('tmdb', 'search', lambda: 1 / 0)\n"
        "except ServiceError as e:\n"
        "    print(e.kind, rel.state('tmdb'), round((time.perf_counter() - t) * 1000, 2))\n"
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    server.program(status(503))
    for failed_calls in range(1, 4):
        assert rel.state("tmdb") == "closed"
        with pytest.raises(ServiceError) as info:
            rel.call("tmdb", "search", _get(server))
        assert info.value.kind == "server"  # the real error, also on the call that trips it
        assert len(server.requests) == 4 * failed_calls  # each call spent its 3 retries
    assert rel.state("tmdb") == "open"

    with pytest.raises(ServiceError) as info:
        rel.call("tmdb", "search", _get(server))
    assert info.value.kind == "breaker_open"
    assert len(server.requests) == 12  # failed without calling (speed: bench_reliability.py)

    # The other process sees the same open breaker and does not call either.
    out = other.communicate("go\n", timeout=30)[0].split()
    assert out[:2] == ["breaker_open", "open"] and float(out[2]) < 500  # no retry waits

    time.sleep(1.1)  # reset timeout: the next call is the half-open trial
    server.program(ok())
    assert rel.call("tmdb", "search", _get(server)) == {"ok": True}
    assert rel.state("tmdb") == "closed"
    assert [e["outcome"] for e in events] == ["failed"] * 4 + ["ok"]
    assert events[3]["breaker_state"] == "open" and events[3]["error_class"] == "breaker_open"
    assert events[3]["attempts"] == 0


def test_a_flaky_service_that_answers_on_retry_keeps_the_breaker_closed(server, tmp_path):
    rel = Reliability(tmp_path / "b", Policy(fail_max=2), sleep=lambda s: None)
    for _ in range(5):
        server.program(status(503), status(502), ok())
        assert rel.call("tmdb", "movie", _get(server)) == {"ok": True}
    assert rel.state("tmdb") == "closed"


def test_client_errors_do_not_trip_the_breaker(server, tmp_path):
    rel = Reliability(tmp_path / "b", Policy(fail_max=2), sleep=lambda s: None)
    server.program(status(404))
    for _ in range(4):
        with pytest.raises(ServiceError):
            rel.call("tmdb", "movie", _get(server))
    assert rel.state("tmdb") == "closed"


def test_redact_masks_keys_and_tokens():
    text = redact(f"key {SECRET} Bearer abc.def-123 url?api_key=XYZ&x=1", ("XYZ",))
    assert SECRET not in text and "abc.def-123" not in text and "XYZ" not in text


# Configured secrets no pattern knows: short, hex, with characters each encoding changes.
SHAPES = ["k3Y", "0123456789abcdef0123456789abcdef", 'a/b+c "d"=é', "eyJhbGciOi.J9.x_y-z"]


@pytest.mark.parametrize("key", SHAPES)
def test_configured_secrets_are_masked_in_errors_events_and_logs(server, tmp_path, key, caplog):
    """The key goes out in the query string (URL-encoded) and comes back in a 401 body, as is
    and JSON-escaped; the HTTP library logs the URL. None of it shows."""
    events: list[dict] = []
    rel = Reliability(tmp_path / "b", Policy(), on_event=events.append, sleep=lambda s: None,
                      secrets=[key, None, ""])
    caplog.set_level(logging.DEBUG)
    server.program(status(401, {"status_message": f"Invalid API key: {key}", "raw": key}))

    def call():
        with http_client(httpx, connect_s=1, read_s=2) as client:
            response = client.get(server.url + "/3/search/movie", params={"api_key": key})
            response.raise_for_status()

    with pytest.raises(ServiceError) as info:
        rel.call("tmdb", "search_movie", call)
    assert "HTTP Request" in caplog.text  # httpx did log the request line
    assert info.value.__cause__ is None and info.value.__context__ is None
    seen = "\n".join([str(info.value), repr(info.value.args), json.dumps(events),
                      json.dumps(events, ensure_ascii=False), caplog.text])
    for form in (key, quote(key, safe=""), json.dumps(key)[1:-1]):
        assert form not in seen


def test_a_body_that_trickles_cannot_outlive_the_deadline(tmp_path):
    """One byte every 2 s: no read waits the 2.5 s read timeout, the call still ends at its
    3 s deadline, as a timeout (no retry: the deadline is spent), and hangs up."""
    events: list[dict] = []
    rel = Reliability(tmp_path / "b", Policy(deadline_s=3.0), on_event=events.append,
                      sleep=lambda s: None)
    for headers_too in (False, True):
        with trickle_server(2.0, headers_too=headers_too) as server:
            started = time.monotonic()
            with pytest.raises(ServiceError) as info:
                rel.call("tmdb", "search", _get_with(server.url, read_timeout=2.5))
            assert 3.0 <= time.monotonic() - started < 4.0
            assert server.hung_up.wait(3)
        assert info.value.kind == "timeout" and info.value.attempts == 1
        assert "deadline of 3 s" in str(info.value)
        assert events[-1]["outcome"] == "failed" and events[-1]["error_class"] == "timeout"
    assert rel.state("tmdb") == "closed"  # two failures of five: counted like any timeout


def test_the_deadline_bounds_attempts_and_waits(server, tmp_path):
    """A hung server with a 0.3 s read timeout: attempts stop at the 1 s deadline; and no
    retry whose backoff would pass the deadline is waited for."""
    waits: list[float] = []
    rel = Reliability(tmp_path / "b", Policy(deadline_s=1.0, base_backoff_s=0.01),
                      sleep=waits.append)
    server.program(hang(30))
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        rel.call("openai", "chat", _get(server, read_timeout=0.3))
    assert info.value.kind == "timeout" and 2 <= info.value.attempts <= 4
    assert time.monotonic() - started < 2.0

    server.program(status(429, retry_after="5"))
    with pytest.raises(ServiceError) as info:
        rel.call("openai", "chat", _get(server))
    assert info.value.kind == "rate_limit" and info.value.attempts == 1
    assert len(server.requests) == 1 and 5.0 not in waits


def test_breaker_state_in_redis_is_shared(tmp_path):
    """Several machines share breakers through Redis; needs redis-server (skipped without)."""
    import shutil
    import socket

    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([redis_server, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        policy = Policy(fail_max=1, reset_timeout_s=30)
        first = Reliability(tmp_path / "a", policy, sleep=lambda s: None, redis_url=url)
        other = Reliability(tmp_path / "b", policy, sleep=lambda s: None, redis_url=url)
        with pytest.raises(ServiceError):
            first.call("tmdb", "search", lambda: (_ for _ in ()).throw(ConnectionError("x")))
        assert first.state("tmdb") == "open" and other.state("tmdb") == "open"
        with pytest.raises(ServiceError) as info:
            other.call("tmdb", "search", lambda: 1)
        assert info.value.kind == "breaker_open"
    finally:
        server.kill()
        server.wait()


def test_second_round_after_spent_retries_only_while_the_breaker_is_closed(server, tmp_path):
    waits: list[float] = []
    rel = Reliability(tmp_path / "b", Policy(fail_max=2, second_round_pause_s=7.0),
                      sleep=waits.append)
    server.program(*[status(503)] * 4, ok())
    assert rel.second_round("tmdb", lambda: rel.call("tmdb", "m", _get(server))) == {"ok": True}
    assert len(server.requests) == 5 and waits[-1] == 7.0

    # Not for errors a pause cannot fix.
    server.program(status(401))
    with pytest.raises(ServiceError) as info:
        rel.second_round("tmdb", lambda: rel.call("tmdb", "m", _get(server)))
    assert info.value.kind == "auth" and len(server.requests) == 1  # program() resets it

    # Not when the spent call opened the breaker (fail_max=2: the 401 was the first failure).
    assert rel.state("tmdb") == "closed"
    server.program(status(503))
    with pytest.raises(ServiceError) as info:
        rel.second_round("tmdb", lambda: rel.call("tmdb", "m", _get(server)))
    assert info.value.kind == "server" and rel.state("tmdb") == "open"
    assert len(server.requests) == 4
