"""The machine's local LLM server: llama.cpp's OpenAI-compatible app on 127.0.0.1, which exits
on its own once no request has come for ``--idle-s`` seconds.

    python -m cpw_resources.llm.local_server --model FILE.gguf --alias NAME --port N \
        [--threads 2] [--ctx 4096] [--idle-s 300]

Started by :class:`cpw_resources.llm.local.LocalServer` (never by hand, though it can be), in
its own session, with its output going to the server's log file under
``$CPW_HOME/llm/servers/``. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--chat-format", default=None)
    parser.add_argument("--idle-s", type=float, default=300.0)
    args = parser.parse_args(argv)

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    started = time.monotonic()
    app = create_app(
        server_settings=ServerSettings(host="127.0.0.1", port=args.port),
        model_settings=[ModelSettings(
            model=args.model, model_alias=args.alias, n_ctx=args.ctx, n_threads=args.threads,
            n_threads_batch=args.threads, n_gpu_layers=0, logits_all=False,
            chat_format=args.chat_format, verbose=False)],
    )
    print(f"cpw local llm: {args.alias} loaded from {args.model} in "
          f"{time.monotonic() - started:.1f} s; {args.threads} threads, context {args.ctx}",
          flush=True)

    busy = [0, time.monotonic()]  # requests in flight, time of the last one's end
    lock = threading.Lock()

    @app.middleware("http")
    async def track(request, call_next):  # type: ignore[no-untyped-def]
        with lock:
            busy[0] += 1
        try:
            return await call_next(request)
        finally:
            with lock:
                busy[0] -= 1
                busy[1] = time.monotonic()

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port,
                                           log_level="warning", access_log=False))

    def watch() -> None:
        while not server.should_exit:
            time.sleep(1.0)
            with lock:
                idle = busy[0] == 0 and time.monotonic() - busy[1] > args.idle_s
            if idle:
                print(f"cpw local llm: no request for {args.idle_s:g} s; stopping", flush=True)
                server.should_exit = True

    threading.Thread(target=watch, name="idle-watch", daemon=True).start()
    server.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
