"""A loopback post-editor: an OpenAI-compatible server on 127.0.0.1 whose "model" answers every
enhancement request with each segment's translation made *longer*, as a fluent LLM often
does, to show what that does to subtitle compliance and that the character budgets hold it.

It speaks the Chat Completions wire format of ``tests/fake_llm.py`` (the test suite's editor
model), and appends a clause to every line before its final punctuation, cycling by segment id
through clauses of 11, 33 and 57 characters (``, my friend`` ... ``, as I have told you so
many times before, my dear friend``), or always ``--tail``. It ignores ``max_chars``, as a
careless model would: the engine must refuse what does not fit, ask once more, then keep the
MT text.

Serve it for the pipeline (every segment sent, to a ``compatible`` provider priced at $0):

    python benchmarks/loopback_post_editor.py serve --port 8765
    export CPW_COMPATIBLE_BASE_URL=http://127.0.0.1:8765/v1
    export CPW_ENHANCE_PROVIDER=compatible:loopback
    export CPW_ENHANCE_ALL=true
    .venv/bin/cpw run cpw_assets/samples/voicemail_fr.mka

then read ``enhanced_rule_compliance`` / ``baseline_rule_compliance`` in the
``enhanced_translation`` metadata (or ``select * from quality``), and ``decisions[].status``
(``enhanced`` or ``over_char_budget``) in ``titles/KEY/enhanced.json``.

Measure it over a corpus of real subtitle timings (each file's text stands in for the MT):

    python benchmarks/loopback_post_editor.py measure [FILE.srt ...]

prints, per file, the share of cues that break no subtitle rule for the MT, for every line
lengthened (no budget), and for the enhancement engine with budgets against this server.
Default corpus: the French film subtitle in ../shared/data/subtitles/pysrt/utf-8.srt.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_llm import openai_reply  # noqa: E402

TAILS = (", my friend", ", as I told you before, my friend",
         ", as I have told you so many times before, my dear friend")
CORPUS = ROOT.parent / "shared" / "data" / "subtitles" / "pysrt" / "utf-8.srt"
_END = ".?!…"


def lengthen(text: str, segment_id: int, tail: str | None = None) -> str:
    """``text`` with a clause appended before its final punctuation."""
    clause = tail if tail is not None else TAILS[segment_id % len(TAILS)]
    core = text.rstrip()
    end = ""
    while core and core[-1] in _END:
        core, end = core[:-1], core[-1] + end
    return f"{core}{clause}{end or '.'}"


def _handler(tail: str | None) -> type[BaseHTTPRequestHandler]:
    def editor(segment: dict[str, Any], glossary: list[dict[str, Any]]) -> str:
        return lengthen(segment["translation"], segment["id"], tail)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    raise ValueError(f"no such endpoint {self.path}")
                reply = openai_reply(body, editor=editor)
            except (ValueError, KeyError, TypeError, IndexError) as error:
                # Not an enhancement request (e.g. the llm translation task's "text" items).
                self._send(400, {"error": {"message": f"loopback post-editor: {error!r}"}})
                return
            self._send(reply.status, reply.body)

    return Handler


@contextmanager
def loopback(port: int = 0, tail: str | None = None) -> Iterator[str]:
    """The server running in this process; yields its ``/v1`` base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(tail))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def serve(port: int, tail: str | None) -> None:
    with loopback(port, tail) as url:
        print(f"loopback post-editor at {url}; use it with\n"
              f"  export CPW_COMPATIBLE_BASE_URL={url}\n"
              f"  export CPW_ENHANCE_PROVIDER=compatible:loopback\n"
              f"  export CPW_ENHANCE_ALL=true\n"
              "Ctrl-C stops it.", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


def measure(paths: list[Path], tail: str | None, batch: int) -> None:
    import pysubs2

    from cpw_resources.llm.engine import Budget, ReplyCache
    from cpw_resources.llm.enhance import Enhancer, make_lines
    from cpw_resources.llm.pricing import Pricing
    from cpw_resources.llm.providers import OpenAIProvider
    from cpw_resources.records import Segment
    from cpw_resources.services.reliability import Policy, Reliability
    from cpw_resources.subtitles.quality import rule_compliance
    from cpw_resources.subtitles.rules import plain_text

    price = Pricing.load().price("compatible", "loopback")
    with loopback(0, tail) as url, tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            events = [e for e in pysubs2.load(str(path)) if not e.is_comment]
            mt = [Segment(i, e.start / 1000, e.end / 1000, text) for i, e in enumerate(events)
                  if (text := plain_text(e.plaintext))]
            longer = [Segment(s.id, s.start, s.end, lengthen(s.text, s.id, tail)) for s in mt]
            provider = OpenAIProvider("loopback", Reliability(Path(tmp) / "breakers", Policy()),
                                      service="openai-compatible", base_url=url,
                                      api_key="no-key", price=price)
            enhancer = Enhancer([(provider, price)], ReplyCache(Path(tmp) / f"{path.name}.db"),
                                Budget(1.0, 1.0), None, "en", batch_size=batch)
            lines = make_lines([], mt, end=mt[-1].end if mt else None)
            out = enhancer.run(lines, {ln.id: ["all"] for ln in lines}, [])
            enhanced = [Segment(s.id, s.start, s.end, out.text[s.id]) for s in mt]
            print(f"{path.name}: {len(mt)} lines; rule compliance: MT "
                  f"{rule_compliance(mt):.1%}, every line lengthened "
                  f"{rule_compliance(longer):.1%}, enhanced within budgets "
                  f"{rule_compliance(enhanced):.1%} ({out.count('enhanced')} lengthened, "
                  f"{out.count('over_char_budget')} over budget and "
                  f"{out.count('rejected')} implausibly long kept as MT after asking again; "
                  f"{out.requests} requests)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="serve on 127.0.0.1 until Ctrl-C")
    serving.add_argument("--port", type=int, default=8765)
    measuring = commands.add_parser("measure", help="compliance over subtitle files")
    measuring.add_argument("files", nargs="*", type=Path)
    measuring.add_argument("--batch", type=int, default=20)
    for command in (serving, measuring):
        command.add_argument("--tail", help="always append this clause (default: cycle "
                             f"through {', '.join(map(repr, TAILS))})")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port, args.tail)
    else:
        measure(args.files or [CORPUS], args.tail, args.batch)


if __name__ == "__main__":
    main()
