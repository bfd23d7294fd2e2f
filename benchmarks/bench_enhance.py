"""What LLM enhancement costs for a 10-minute title: requests, tokens, share of segments sent,
dollars at the listed prices, and the wall time it adds apart from the provider's latency.

    python benchmarks/bench_enhance.py [--segments 150] [--batch 20]

No Hindi film with its MT could be shipped here, so the title is built from real text: 150
subtitle-length Hindi sentences (10 minutes at 4 s per line, a film's usual density) from the
human en↔hi LibreOffice translations in ../shared/data/parallel_en_hi, with the English side
standing in for the machine translation and also serving as the reference subtitle. A
glossary of five character names is planted in 1 line in 6 (the MT spells each a little off),
and a cultural term in 1 line in 10. The LLM is a 127.0.0.1 server speaking the OpenAI wire
protocol that edits like a model would (fixes the names) and reports usage counted with a real
BPE tokenizer (Whisper's, GPT-2 family; it splits Devanagari into more tokens than GPT-4o's
o200k, so the figures lean high). Two passes: selective (the default) and every segment
(``CPW_ENHANCE_ALL``). A third pass repeats the first to show the cache.

The wall time measured is the work the ``enhanced_translation`` stage does on this machine:
selection, request building, reply checking, the cache, and quality scoring of baseline and
enhanced text against the reference; time inside provider calls (``api_calls.latency_ms``)
is subtracted.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tokenizers import Tokenizer  # noqa: E402

from cpw_resources.llm.engine import Budget, ReplyCache  # noqa: E402
from cpw_resources.llm.enhance import Enhancer, Line, load_cultural_terms, select  # noqa: E402
from cpw_resources.llm.pricing import Pricing  # noqa: E402
from cpw_resources.llm.providers import OpenAIProvider  # noqa: E402
from cpw_resources.records import Segment  # noqa: E402
from cpw_resources.services.reliability import Policy, Reliability  # noqa: E402
from cpw_resources.settings import Settings  # noqa: E402
from cpw_resources.speech.models import ModelRegistry  # noqa: E402
from cpw_resources.subtitles.quality import RefLine, score  # noqa: E402
from tests.fake_llm import serve  # noqa: E402
from tests.fake_service import fake_service  # noqa: E402

PARALLEL = ROOT.parent / "shared" / "data" / "parallel_en_hi" / "libreoffice_help_7.4_en_hi.tsv"
NAMES = [("Aakash", "Akash"), ("Sameer", "Samir"), ("Shalini", "Shalni"),
         ("Siddharth", "Sidharth"), ("Pooja", "Puja")]
CULTURAL = ["यार", "अरे", "भाई", "बेटा", "जी"]
PRICED = ["openai:gpt-4o-mini", "openai:gpt-4.1-mini", "openai:gpt-5-mini",
          "anthropic:claude-haiku-4-5"]


def build_title(n: int, seed: int) -> tuple[list[Line], list[dict], list[RefLine]]:
    with open(PARALLEL, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t")
                if 25 <= len(r["en"]) <= 80 and r["en"].endswith((".", "?", "!"))
                and "<" not in r["en"] and r["hi"].strip()]
    rng = random.Random(seed)
    rows = rng.sample(rows, n)
    lines, reference = [], []
    for i, row in enumerate(rows):
        source, mt = row["hi"].strip(), row["en"].strip()
        ref = mt
        if i % 6 == 0:
            right, heard = NAMES[(i // 6) % len(NAMES)]
            source, mt, ref = f"{right}, {source}", f"{heard}, {mt}", f"{right}, {ref}"
        if i % 10 == 5:
            source = f"{CULTURAL[(i // 10) % len(CULTURAL)]}, {source}"
        start = i * 4.0
        lines.append(Line(i, start, start + 3.6, source, mt, asr_logprob=-0.3))
        reference.append(RefLine(start, start + 3.6, ref))
    terms = [{"term": right, "kind": "character"} for right, _ in NAMES]
    return lines, terms, reference


def run_pass(label: str, lines, terms, reference, server, cache_path: Path, *,
             enhance_all: bool, batch: int, tokens_only: bool = False) -> dict:
    events: list[dict] = []
    rel = Reliability(cache_path.parent / "breakers", Policy(), on_event=events.append)
    price = Pricing.load().price("openai", "gpt-4o-mini")
    provider = OpenAIProvider("gpt-4o-mini", rel, base_url=server.url + "/v1",
                              api_key="bench-key", price=price)
    started = time.perf_counter()
    reasons = select(lines, terms, load_cultural_terms(), source="hi", target="en",
                     enhance_all=enhance_all)
    enhancer = Enhancer([(provider, price)], ReplyCache(cache_path), Budget(10.0, 100.0),
                        "hi", "en", batch_size=batch, summary="Benchmark (2026); drama")
    out = enhancer.run(lines, reasons, terms, load_cultural_terms())
    segments = [Segment(ln.id, ln.start, ln.end, ln.translation) for ln in lines]
    enhanced = [Segment(ln.id, ln.start, ln.end, out.text[ln.id]) for ln in lines]
    source = [Segment(ln.id, ln.start, ln.end, ln.source) for ln in lines]
    base_scores, _ = score(source, segments, terms, reference)
    enh_scores, broken = score(source, enhanced, terms, reference, baseline=segments)
    wall = time.perf_counter() - started
    in_calls = sum(e["latency_ms"] for e in events) / 1000
    return {"label": label, "sent": len(reasons), "requests": out.requests,
            "input_tokens": out.input_tokens, "output_tokens": out.output_tokens,
            "cache_hits": out.cache_hits, "wall": wall, "in_calls": in_calls,
            "base": base_scores, "enh": enh_scores, "broken": len(broken),
            "reasons": sorted({r.split(":")[0] for rs in reasons.values() for r in rs})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=150)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    base = ModelRegistry.from_settings(Settings()).resolve("base")
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))

    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids)

    lines, terms, reference = build_title(args.segments, args.seed)
    minutes = (lines[-1].end - lines[0].start) / 60
    pricing = Pricing.load()
    print(f"title: {len(lines)} segments, {minutes:.1f} min, hi → en, "
          f"batch {args.batch}; prices from {pricing.source.name}")
    with fake_service() as server, tempfile.TemporaryDirectory() as tmp:
        serve(server, count=count)
        results = [
            run_pass("selective", lines, terms, reference, server, Path(tmp) / "a.sqlite",
                     enhance_all=False, batch=args.batch),
            run_pass("all segments", lines, terms, reference, server, Path(tmp) / "b.sqlite",
                     enhance_all=True, batch=args.batch),
            run_pass("selective, re-run", lines, terms, reference, server,
                     Path(tmp) / "a.sqlite", enhance_all=False, batch=args.batch),
        ]
    for r in results:
        print(f"\n{r['label']}: {r['sent']}/{len(lines)} segments sent "
              f"({r['sent'] / len(lines):.0%}; reasons {', '.join(r['reasons'])}), "
              f"{r['requests']} requests, {r['input_tokens']:,} in + {r['output_tokens']:,} "
              f"out tokens, {r['cache_hits']} from cache")
        for name in PRICED:
            provider, model = name.split(":")
            price = pricing.price(provider, model)
            dollars = price.cost(r["input_tokens"], r["output_tokens"])
            print(f"  {name:<28} ${dollars:.4f}  (prices of {price.as_of})")
        print(f"  wall {r['wall']:.2f} s, of which in provider calls {r['in_calls']:.2f} s: "
              f"extra time apart from provider latency {r['wall'] - r['in_calls']:.2f} s "
              f"(target ≤ 60 s)")
        print(f"  BLEU {r['base'].get('bleu')} → {r['enh'].get('bleu')}, chrF "
              f"{r['base'].get('chrf')} → {r['enh'].get('chrf')}, name accuracy "
              f"{r['base']['name_accuracy']} → {r['enh']['name_accuracy']}, broken names "
              f"{r['broken']}")


if __name__ == "__main__":
    main()
