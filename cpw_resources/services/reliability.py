"""The one way out of the process: circuit breakers, retry policies, deadlines and redaction.

Every call to an outside service (TMDB, OpenAI, Anthropic, an OpenAI-compatible server) goes
through :meth:`Reliability.call`:

- a pybreaker circuit breaker per service (CLOSED → OPEN after ``fail_max`` calls in a row
  failed with their retries spent → HALF_OPEN after ``reset_timeout`` → CLOSED after a
  successful trial call). Its state lives in a small locked file per
  service (:class:`FileBreakerStorage`), so every process on the machine shares it: a run that
  starts while a provider is down fails fast instead of retrying. pybreaker's Redis storage
  can replace it for several machines;
- a tenacity retry policy chosen by the error's class: network errors and timeouts 3 retries
  with exponential backoff and jitter; 429 rate limits 5 retries honouring ``Retry-After`` /
  rate-limit reset headers; 5xx 3 retries; exhausted quota, authentication and other 4xx no
  retry. Callers switch their SDK's own retries off so this is the one policy;
- a deadline (``Policy.deadline_s``) on the whole call, the attempt in progress included: the
  clients made by :func:`http_client` clamp every connect, read and write to the time left,
  so a server that trickles one byte at a time cannot outlive it; the call then ends with a
  ``timeout`` error (retried and counted by the breaker like any timeout) and its connection
  is closed, nothing left running. No retry starts, and no backoff waits, past the deadline;
- redaction: every configured secret (``secrets``: keys and tokens whatever their shape, also
  URL- and JSON-encoded) and anything shaped like a key is masked in every error, event and
  degradation this layer emits and in every log record of the process, and a
  :class:`ServiceError` carries no chained exception (whose request or reply could hold one);
- one ``api_calls`` event per call (service, operation, status, attempts, latency, breaker
  state, error class) through ``on_event``; what a service answered that was not taken as
  given (e.g. implausible token usage) is a ``degradations`` row through ``on_degradation``.
"""

from __future__ import annotations

import importlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, quote_plus

from tenacity import RetryCallState, Retrying, retry_if_exception

if TYPE_CHECKING:
    from pybreaker import CircuitBreaker, CircuitBreakerStorage

from cpw_resources.errors import CpwError

T = TypeVar("T")

NETWORK, TIMEOUT, RATE_LIMIT, QUOTA, AUTH, CLIENT, SERVER, MALFORMED, BREAKER_OPEN = (
    "network", "timeout", "rate_limit", "quota", "auth", "client", "server", "malformed",
    "breaker_open",
)
# Retries after the first attempt, by kind; kinds not listed are not retried.
RETRIES = {NETWORK: 3, TIMEOUT: 3, SERVER: 3, MALFORMED: 1, RATE_LIMIT: 5}
# Kinds that say nothing about the service's health (our request was wrong).
NOT_A_SERVICE_FAILURE = {CLIENT}
_SECRET_PATTERNS = [
    re.compile(r"(sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]+"),
    re.compile(r"(?i)((?:api[_-]?key|access_token|token)=)[^&\s]+"),
]


def secret_forms(secrets: Iterable[str | None]) -> tuple[str, ...]:
    """Each secret as a reply or a log may echo it (as is, URL-encoded, JSON-escaped), longest
    first so a longer form is masked whole."""
    forms = {form for secret in secrets if secret
             for form in (secret, quote(secret, safe=""), quote_plus(secret),
                          json.dumps(secret)[1:-1])}
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with ``secrets`` (see :func:`secret_forms`) and anything shaped like a key or
    token masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


_logged_secrets: tuple[str, ...] = ()  # replaced whole, never changed in place
_LOG_LOCK = threading.Lock()


def hide_in_logs(forms: tuple[str, ...]) -> None:
    """Mask ``forms`` (of :func:`secret_forms`) in every log record made from now on in this
    process (an HTTP library logs request URLs, and TMDB's key is a query parameter)."""
    global _logged_secrets
    with _LOG_LOCK:
        known = set(_logged_secrets)
        if known >= set(forms):
            return
        if not known:
            _install_log_redaction()
        _logged_secrets = tuple(sorted(known | set(forms), key=len, reverse=True))


def _install_log_redaction() -> None:
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        secrets = _logged_secrets
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: logging reports it later
            return record
        if any(secret in text for secret in secrets):
            record.msg, record.args = redact(text, secrets), None
        return record

    logging.setLogRecordFactory(redacting_record)


class ServiceError(CpwError):
    """A call to an outside service failed; ``kind`` decides retry and breaker behaviour."""

    def __init__(self, service: str, operation: str, kind: str, message: str, *,
                 status: int | None = None, retry_after: float | None = None) -> None:
        self.service, self.operation, self.kind = service, operation, kind
        self.status, self.retry_after = status, retry_after
        self.attempts = 1
        where = f"{service} {operation}" + (f" (HTTP {status})" if status else "")
        super().__init__(f"{where}: {kind.replace('_', ' ')}: {redact(message)}")

    def hide(self, secrets: tuple[str, ...]) -> ServiceError:
        """This error with ``secrets`` masked and no chained exception (the raw request or
        reply of the SDK or HTTP library, which may hold a key)."""
        self.args = (redact(str(self), secrets),)
        self.__cause__ = self.__context__ = None
        self.__suppress_context__ = True
        return self


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or x-ratelimit-reset headers."""
    if headers is None:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                return None
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset", "ratelimit-reset"):
        reset = headers.get(name)
        if reset:
            match = re.fullmatch(r"(?:(\d+)m)?(\d+(?:\.\d+)?)(ms|s)?", reset.strip())
            if match:
                minutes, amount, unit = match.groups()
                seconds = float(amount) / (1000 if unit == "ms" else 1)
                return seconds + 60 * int(minutes or 0)
    return None


def kind_for_status(status: int, body: str = "") -> str:
    lowered = body.lower()
    if status == 429:
        return QUOTA if ("insufficient_quota" in lowered or "quota" in lowered
                         and "exceeded your current quota" in lowered) else RATE_LIMIT
    if status in (401, 403):
        return AUTH
    if status == 402:
        return QUOTA
    if status == 408:
        return TIMEOUT
    if status >= 500:
        return SERVER
    return CLIENT


def classify(exc: BaseException, service: str, operation: str) -> ServiceError:
    """Map httpx / OpenAI / Anthropic / JSON errors to a ServiceError with a kind."""
    if isinstance(exc, ServiceError):
        return exc
    import httpx

    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        body = ""
        try:
            body = response.text[:300] if response is not None else ""
        except Exception:  # a streamed or closed body
            body = ""
        return ServiceError(service, operation, kind_for_status(status, body), body or str(exc),
                            status=status, retry_after=retry_after_seconds(
                                getattr(response, "headers", None)))
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException) or "Timeout" in name:
        return ServiceError(service, operation, TIMEOUT, f"no answer in time ({name})")
    if isinstance(exc, httpx.TransportError) or name in ("APIConnectionError", "ConnectionError"):
        return ServiceError(service, operation, NETWORK, f"{name}: {exc}")
    if isinstance(exc, ValueError | KeyError | TypeError) or name == "APIResponseValidationError":
        return ServiceError(service, operation, MALFORMED, f"unexpected reply ({name}: {exc})")
    return ServiceError(service, operation, NETWORK, f"{name}: {exc}")


#: When the :meth:`Reliability.call` running in this thread (or task) must end (monotonic).
_DEADLINE: ContextVar[float | None] = ContextVar("cpw_call_deadline", default=None)


def _time_left(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to what is left of the call's deadline; ``error`` once past it."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream:
    """A connection whose every read, write and TLS handshake ends by the call's deadline."""

    def __init__(self, stream: Any, core: ModuleType) -> None:
        self._stream, self._core = stream, core

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, self._core.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, self._core.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> _DeadlineStream:
        return _DeadlineStream(self._stream.start_tls(
            ssl_context, server_hostname, _time_left(timeout, self._core.ConnectTimeout)),
            self._core)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend:
    """httpcore's network backend, its connections made :class:`_DeadlineStream`."""

    def __init__(self, backend: Any, core: ModuleType) -> None:
        self._backend, self._core = backend, core

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None) -> Any:
        stream = self._backend.connect_tcp(host, port, _time_left(timeout,
                                                                  self._core.ConnectTimeout),
                                           local_address, socket_options)
        return _DeadlineStream(stream, self._core)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> Any:
        stream = self._backend.connect_unix_socket(
            path, _time_left(timeout, self._core.ConnectTimeout), socket_options)
        return _DeadlineStream(stream, self._core)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def http_client(http: ModuleType, *, connect_s: float, read_s: float, **options: Any) -> Any:
    """An ``http.Client`` (``http`` is httpx or its fork httpx2, which the SDKs use) whose
    connections honour the deadline of the :meth:`Reliability.call` they run in."""
    transport = http.HTTPTransport()
    pool = transport._pool
    # httpx offers no public hook for httpcore's network backend, the one place every socket
    # operation goes through; tests with a trickling server fail if this stops working.
    core = importlib.import_module(type(pool).__module__.split(".")[0])
    pool._network_backend = _DeadlineBackend(pool._network_backend, core)
    return http.Client(transport=transport, timeout=http.Timeout(read_s, connect=connect_s),
                       **options)


#: pybreaker's name for a closed breaker (``pybreaker.STATE_CLOSED``).
CLOSED = "closed"


@dataclass(frozen=True)
class Policy:
    fail_max: int = 5
    reset_timeout_s: float = 60.0
    base_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    deadline_s: float = 120.0  # a whole call: retries, waits and the attempt in progress
    second_round_pause_s: float = 10.0  # see Reliability.second_round


class Reliability:
    """Breakers shared through ``state_dir`` and the retry policies; one per process is enough."""

    def __init__(self, state_dir: Path, policy: Policy = Policy(), *,
                 on_event: Callable[[dict[str, Any]], None] | None = None,
                 on_degradation: Callable[[dict[str, Any]], None] | None = None,
                 on_note: Callable[[str, dict[str, Any]], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 redis_url: str | None = None, secrets: Iterable[str | None] = ()) -> None:
        self.state_dir = Path(state_dir)
        self.redis_url = redis_url
        self.policy = policy
        self.on_event, self.on_degradation, self.on_note = on_event, on_degradation, on_note
        self.sleep = sleep
        self.secrets = secret_forms(secrets)
        hide_in_logs(self.secrets)
        self._breakers: dict[str, CircuitBreaker] = {}

    def redact(self, text: str) -> str:
        """``text`` with every configured secret and anything shaped like a key masked."""
        return redact(text, self.secrets)

    def degraded(self, service: str, kind: str, message: str, fallback: str) -> None:
        """Record that ``service`` answered something not taken as given, and what was done."""
        if self.on_degradation is not None:
            self.on_degradation({"service": service, "kind": kind,
                                 "message": self.redact(message), "fallback": fallback})

    def note(self, table: str, row: dict[str, Any]) -> None:
        """Record ``row`` in the event table ``table`` (e.g. a local model server's start)."""
        if self.on_note is not None:
            self.on_note(table, {k: self.redact(v) if isinstance(v, str) else v
                                 for k, v in row.items()})

    def breaker(self, service: str) -> CircuitBreaker:
        import pybreaker  # ~0.15 s with the redis client it finds: paid at the first call

        if service not in self._breakers:
            self._breakers[service] = pybreaker.CircuitBreaker(
                fail_max=self.policy.fail_max,
                reset_timeout=self.policy.reset_timeout_s,
                exclude=[lambda e: isinstance(e, ServiceError)
                         and e.kind in NOT_A_SERVICE_FAILURE],
                state_storage=self._storage(service),
                name=service,
                # Callers see the error that tripped the breaker, not a generic one.
                throw_new_error_on_trip=False,
            )
        return self._breakers[service]

    def _storage(self, service: str) -> CircuitBreakerStorage:
        """A file on this machine, or Redis (``breaker_redis_url``) shared by several."""
        import pybreaker

        from cpw_resources.services.breakers import FileBreakerStorage

        if self.redis_url is None:
            return FileBreakerStorage(self.state_dir / f"{service}.json")
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client,
                                             namespace=f"cpw:{service}")

    def state(self, service: str) -> str:
        return self.breaker(service).current_state

    def second_round(self, service: str, work: Callable[[], T]) -> T:
        """Run ``work`` (one or more ``call``s); if its retries were spent on a transient
        error and ``service``'s breaker is still closed, pause and run it once more.

        A burst of failures longer than the backoff window (~4 s) is common; a title that
        asks again a little later gets its full result instead of degrading. Each round's
        calls follow the retry policy and are events of their own; an open breaker, quota,
        auth and other client errors end at once.
        """
        try:
            return work()
        except ServiceError as error:
            if (error.kind not in RETRIES or self.policy.second_round_pause_s < 0
                    or self.state(service) != CLOSED):
                raise
            self.sleep(self.policy.second_round_pause_s)
        return work()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ServiceError) and error.retry_after is not None:
            return min(error.retry_after, self.policy.max_backoff_s)
        backoff = self.policy.base_backoff_s * 2 ** (state.attempt_number - 1)
        return min(self.policy.max_backoff_s, backoff) * random.uniform(0.5, 1.0)

    def call(self, service: str, operation: str, fn: Callable[[], T], *,
             describe: Callable[[T], dict[str, Any]] | None = None,
             context: dict[str, Any] | None = None, deadline_s: float | None = None) -> T:
        """Run ``fn`` under ``service``'s breaker, retry policy and deadline (the policy's, or
        ``deadline_s`` for a service known to be slow, such as a local model); raise
        ServiceError (secrets masked).

        The ``api_calls`` event gets ``context`` (e.g. the model) and, on success,
        ``describe(result)`` (e.g. token usage and dollar cost).
        """
        breaker = self.breaker(service)
        from pybreaker import CircuitBreakerError  # loaded by self.breaker
        started = time.perf_counter()
        deadline_s = self.policy.deadline_s if deadline_s is None else deadline_s
        deadline = time.monotonic() + deadline_s
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            try:
                return fn()
            except Exception as exc:
                error = classify(exc, service, operation)
            if error.kind == TIMEOUT and time.monotonic() >= deadline:
                error = ServiceError(service, operation, TIMEOUT, "no complete answer within "
                                     f"the call's deadline of {deadline_s:g} s")
            raise error.hide(self.secrets)

        def should_retry(exc: BaseException) -> bool:
            return (isinstance(exc, ServiceError) and exc.kind in RETRIES
                    and attempts <= RETRIES[exc.kind])

        def wait(state: RetryCallState) -> float:
            return min(self._wait(state), max(0.0, deadline - time.monotonic()))

        def past_deadline(state: RetryCallState) -> bool:
            """No retry whose backoff would reach the deadline (nor one after it)."""
            return time.monotonic() + (state.upcoming_sleep or 0.0) >= deadline

        retrying = Retrying(retry=retry_if_exception(should_retry), wait=wait,
                            stop=past_deadline, sleep=self.sleep, reraise=True)

        def with_retries() -> T:
            return retrying(attempt)

        status, error, extra = None, None, dict(context or {})
        token = _DEADLINE.set(deadline)
        try:
            # The breaker counts calls whose retries are spent, not single attempts: a flaky
            # service that answers on the second try is healthy; one that never answers is not.
            result = breaker.call(with_retries)
            status = getattr(result, "status_code", None)
            if describe is not None:
                extra.update(describe(result))
            return result
        except CircuitBreakerError:
            error = ServiceError(service, operation, BREAKER_OPEN,
                                 "circuit breaker is open; not calling until it resets")
            error.attempts = 0
        except ServiceError as exc:
            exc.attempts = attempts
            status, error = exc.status, exc
            raise
        finally:
            _DEADLINE.reset(token)
            self._record({
                "service": service, "operation": operation, "http_status": status,
                "attempts": attempts,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "breaker_state": breaker.current_state,
                "error_class": error.kind if error else None,
                "outcome": "ok" if error is None else "failed",
                **extra,
            })
        raise error

    def _record(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event({key: self.redact(value) if isinstance(value, str) else value
                           for key, value in event.items()})
