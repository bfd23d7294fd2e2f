"""Outside services failing: how many titles still get full results, and how fast an open
breaker fails. Run by hand; prints the figures.

    python benchmarks/bench_reliability.py [--titles 200] [--failure-rate 0.3]

A TMDB-speaking server on 127.0.0.1 fails a share of requests at random (503, 502, 500,
connection reset, 429 with Retry-After: 0.2); the real TMDB client asks it for each title's
cast through the reliability layer with the default policy (3 retries for 5xx/network, 5 for
429, exponential backoff with jitter starting at 0.5 s), the way the ``glossary`` stage does:
a title whose call spent its retries asks once more after a pause while the breaker is closed
(``--second-round-pause``, default 2 s here, 10 s in the product; -1 shows the figure without
it). Then the server is hard down (every
request 503): the first title meets the failures and opens the breaker; every later title is
degraded (no TMDB names) and its call fails fast — the figure is the latency of those calls.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cpw_resources.services.reliability import Policy, Reliability, ServiceError  # noqa: E402
from cpw_resources.services.tmdb import TmdbClient  # noqa: E402
from cpw_resources.settings import Settings  # noqa: E402
from tests.fake_service import fake_service, ok, reset, status  # noqa: E402


def replies(path: str):
    """A distinct film per title, so every title makes its two calls (search, credits)."""
    if "/search/movie" in path:
        title_number = int(path.split("query=Film+")[1].split("&")[0]) if "Film+" in path else 0
        return ok({"results": [{"id": 1000 + title_number}]})
    return ok({"cast": [{"name": "Actor", "character": "Hero"}]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--titles", type=int, default=200)
    parser.add_argument("--failure-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--second-round-pause", type=float, default=2.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    faults = [status(503), status(502), status(500), reset(), status(429, retry_after="0.2")]

    with fake_service() as server, tempfile.TemporaryDirectory() as tmp:
        def flaky(path: str):
            return rng.choice(faults) if rng.random() < args.failure_rate else replies(path)

        server.chooser = flaky
        settings = Settings(home=Path(tmp) / "a", tmdb_base_url=server.url + "/3",
                            http_read_timeout_s=2.0)
        events: list[dict] = []
        rel = Reliability(settings.breakers_dir,
                          Policy(second_round_pause_s=args.second_round_pause),
                          on_event=events.append)
        client = TmdbClient(settings.tmdb_base_url, rel, cache_dir=settings.home_dir / "responses",
                            api_key="benchmark-key",
                            read_timeout_s=settings.http_read_timeout_s)
        full = second_rounds = 0
        started = time.perf_counter()
        for i in range(args.titles):
            calls_before = len(events)
            try:
                _, cast = rel.second_round(
                    "tmdb", lambda i=i: client.film_cast(f"Film {i}", 2000 + i % 20))
                full += bool(cast)
            except ServiceError:
                pass
            title_events = events[calls_before:]
            second_rounds += sum(e["outcome"] == "failed" for e in title_events) > 0
        flaky_s = time.perf_counter() - started
        attempts = [e["attempts"] for e in events]
        print(f"{args.titles} titles, {args.failure_rate:.0%} of requests failing at random:")
        print(f"  full results: {full}/{args.titles} = {full / args.titles:.1%} (target ≥ 99%)")
        print(f"  {len(events)} calls, {len(server.requests)} HTTP requests, mean attempts "
              f"{statistics.mean(attempts):.2f}, max {max(attempts)}; {flaky_s:.1f} s in all")
        failed_calls = sum(e["outcome"] == "failed" for e in events)
        print(f"  calls that spent all their retries: {failed_calls} "
              f"({failed_calls / len(events):.2%}); titles that needed a second round: "
              f"{second_rounds}; breaker {rel.state('tmdb')}")

        server.chooser = lambda path: status(503)
        settings = Settings(home=Path(tmp) / "b", tmdb_base_url=server.url + "/3")
        events.clear()
        rel = Reliability(settings.breakers_dir, Policy(), on_event=events.append)
        client = TmdbClient(settings.tmdb_base_url, rel, cache_dir=settings.home_dir / "responses",
                            api_key="benchmark-key",
                            read_timeout_s=settings.http_read_timeout_s)
        degraded = 0
        for i in range(args.titles):
            try:
                client.film_cast(f"Down {i}", None)
            except ServiceError:
                degraded += 1
        fast = [e["latency_ms"] for e in events if e["error_class"] == "breaker_open"]
        print(f"provider hard down, {args.titles} titles: {degraded} degraded (glossary without "
              f"TMDB names), breaker state {rel.state('tmdb')}")
        print(f"  calls failed fast by the open breaker: {len(fast)}; latency median "
              f"{statistics.median(fast):.2f} ms, max {max(fast):.2f} ms (target < 10 ms)")


if __name__ == "__main__":
    main()
