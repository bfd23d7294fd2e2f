"""``enhanced_translation``: selective LLM post-editing of the translation, costed and capped.

Same segment ids and times as ``translation.json``; only the text of the segments that need
it changes (see :mod:`cpw_resources.llm.enhance`), and only within each segment's character
budget, so the subtitles built from it still meet the reading speed. Without
``CPW_ENHANCE_PROVIDER`` it is the translation, marked "not enhanced: no provider". Scores of
the baseline and the enhanced text (BLEU/chrF against ``NAME.<target>.srt`` beside the media
when present; always name accuracy, glossary adherence, subtitle-rule compliance) are
``quality`` events and metadata; checks warn when enhancement fell short or scored below the
baseline and fail when it broke names.
"""


from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from cpw_assets.language.glossary import glossary
from cpw_assets.language.translation import translation
from cpw_assets.speech.transcript import transcript
from cpw_assets.stage import Stage, stage
from cpw_resources.atomic import write_json
from cpw_resources.errors import MediaError
from cpw_resources.language.matching import contains
from cpw_resources.language.memory import TitleContext, context_rows
from cpw_resources.llm.engine import Budget, ReplyCache
from cpw_resources.llm.enhance import (
    CULTURAL_TERMS,
    ENHANCEMENT_PROMPT,
    Enhancer,
    load_cultural_terms,
    make_lines,
    select,
)
from cpw_resources.llm.providers import ProviderSpec
from cpw_resources.orchestration.config import EnhancementConfig
from cpw_resources.orchestration.partitions import titles
from cpw_resources.orchestration.resources import (
    EventStoreResource,
    LlmResource,
    ReliabilityResource,
    TitleRegistryResource,
)
from cpw_resources.records import Segment, read_segments
from cpw_resources.store.cache import sha256_file
from cpw_resources.store.sidecars import Sidecars
from cpw_resources.subtitles.quality import load_reference, score
from cpw_resources.subtitles.rules import DEFAULT_RULES

CHECKS = {
    "enhancement_complete": "Every segment selected for post-editing was enhanced (none kept "
                            "its MT text for the budget, failures, bad or over-long replies)",
    "not_worse_than_baseline": "With a reference subtitle beside the film: the enhanced "
                               "text scores no lower (BLEU, chrF) than the translation",
    "names_intact": "Glossary names are spelled as the glossary spells them, and none the "
                    "translation had is dropped",
}
NOT_ENHANCED = ("failed", "budget", "rejected", "over_char_budget")


@asset(
    partitions_def=titles,
    group_name="language",
    deps=[translation, transcript, glossary],
    check_specs=[AssetCheckSpec(name, asset="enhanced_translation", description=text)
                 for name, text in CHECKS.items()],
    kinds={"openai", "anthropic"},
)
def enhanced_translation(context: AssetExecutionContext, config: EnhancementConfig,
                         store: EventStoreResource, titles: TitleRegistryResource,
                         llm: LlmResource, reliability: ReliabilityResource) -> MaterializeResult:
    """The translation post-edited by an LLM where it helps, within the budget; one
    ``enhanced.<lang>.json`` and one cache entry per target language."""
    with stage(context, store, titles) as st:
        languages = st.files.languages()
        st.target_language = ",".join(languages)
        specs = _specs(config)
        results, hits = {}, []
        for language in languages:
            inputs = _Inputs.load(st, language)
            reference = Sidecars(st.title.media).reference(language)
            result = st.reuse(
                config, language=language, prompt=ENHANCEMENT_PROMPT.version,
                cultural=sha256_file(CULTURAL_TERMS),
                prices=sha256_file(llm.pricing.source) if specs else None,
                daily_budget_usd=llm.daily_budget_usd if specs else None,
                reference=sha256_file(reference) if reference else None,
                rules=asdict(DEFAULT_RULES),
            )
            hits.append(result is not None)
            if result is None:
                output = st.output(st.files.path(f"enhanced.{language}.json"))
                result, enhanced = _enhance(st, config, inputs, specs, llm, reliability,
                                            output)
                result |= _quality(st, inputs, enhanced, reference)
                if not result["not_enhanced"]:  # a short-changed title tries again next run
                    st.save(result, [output])
            results[language] = result
        st.cache_hit = bool(hits) and all(hits)
        write_json(st.output(st.files.path("enhanced.json")), {"languages": list(results)})
    if not results:
        return MaterializeResult(metadata=st.metadata({"languages": "none"}),
                                 check_results=_checks(None))
    first = next(iter(results.values()))
    metadata = st.metadata({**_public(first), "languages": ",".join(results)})
    if len(results) > 1:
        metadata["by_language"] = MetadataValue.json(
            {lang: {k: v for k, v in _public(r).items() if isinstance(v, int | float | str)}
             for lang, r in results.items()})
    return MaterializeResult(metadata=metadata, check_results=_checks(*results.values()))


def _specs(config: EnhancementConfig) -> list[ProviderSpec]:
    specs = []
    if config.provider:
        specs.append(ProviderSpec.parse(config.provider, "CPW_ENHANCE_PROVIDER"))
        if config.fallback:
            specs.append(ProviderSpec.parse(config.fallback, "CPW_ENHANCE_FALLBACK"))
    return specs


def _summary(glossary: dict[str, Any]) -> str:
    meta = glossary.get("metadata", {})
    head = str(meta.get("title", "")) + (f" ({meta['year']})" if meta.get("year") else "")
    parts = [head.strip()] if head.strip() else []
    parts += [f"{k}: {', '.join(meta[k]) if isinstance(meta[k], list) else meta[k]}"
              for k in ("genre", "director", "series") if meta.get(k)]
    names = [t["term"] for t in glossary.get("terms", ()) if t.get("kind") == "character"]
    if names:
        parts.append("characters: " + ", ".join(dict.fromkeys(names)))
    if meta.get("summary"):
        parts.append(str(meta["summary"]))
    return "; ".join(parts)[:600]


@dataclass(frozen=True)
class _Inputs:
    """The stage's input artifacts, read once."""

    document: dict[str, Any]  # translation.json
    baseline: list[Segment]
    transcript: list[Segment]
    glossary: dict[str, Any]
    duration: float | None  # of the recording, seconds

    @classmethod
    def load(cls, st: Stage, language: str) -> "_Inputs":
        document, transcript = st.files.translation(language), st.files.transcript()
        duration = transcript.get("duration_s")
        return cls(document, read_segments(document), read_segments(transcript),
                   st.files.glossary(), float(duration) if duration is not None else None)


def _enhance(st: Stage, config: EnhancementConfig, inputs: _Inputs, specs: list[ProviderSpec],
             llm: LlmResource, reliability: ReliabilityResource,
             output: Path) -> tuple[dict, list[Segment]]:
    """Enhance what needs it and write ``enhanced.json``; (result, enhanced segments)."""
    document, baseline, glossary = inputs.document, inputs.baseline, inputs.glossary
    terms = glossary.get("terms", [])
    source, target = document["source_language"], document["target_language"]
    lines = make_lines(inputs.transcript, baseline, rules=DEFAULT_RULES, end=inputs.duration)
    cultural = load_cultural_terms()
    reasons = select(lines, terms, cultural, source=source, target=target,
                     enhance_all=config.enhance_all)
    if source == target or not baseline:
        reasons = {}
    base: dict[str, Any] = {
        "segments": len(baseline), "selected": len(reasons),
        "share_selected": round(len(reasons) / len(baseline), 4) if baseline else 0.0,
        "reasons": dict(Counter(r.split(":")[0] for rs in reasons.values() for r in rs)),
        "enhanced": 0, "cache_hits": 0, "requests": 0, "input_tokens": 0, "output_tokens": 0,
        "cost_usd": 0.0, "not_enhanced": 0, "budget_stopped": False, "over_char_budget": 0,
    }
    if not specs:
        status = "not enhanced: no provider (set CPW_ENHANCE_PROVIDER)"
        st.context.log.info(f"enhanced_translation: {status}")
        return base | {"status": status}, _write(output, document, baseline, {}, reasons, {},
                                                 status)
    if not reasons:
        status = "not enhanced: no segment needs it"
        return base | {"status": status}, _write(output, document, baseline, {}, reasons, {},
                                                 status)

    calls = reliability.for_call(run_id=st.context.run_id, title=st.key, asset=st.name,
                                 secrets=llm.secrets)
    providers = [(llm.provider(s, calls, setting="CPW_ENHANCE_PROVIDER" if i == 0
                               else "CPW_ENHANCE_FALLBACK"),
                  llm.pricing.price(s.provider, s.model)) for i, s in enumerate(specs)]
    title_spent, day_spent = st.store.events.spent(st.key)
    budget = Budget(config.title_budget_usd, llm.daily_budget_usd, title_spent, day_spent)
    film_s = inputs.duration or (baseline[-1].end if baseline else 0.0)
    if specs[0].provider == "local" and config.local_time_share > 0:
        budget.seconds_limit = config.local_time_share * film_s

    enhancer = Enhancer(providers, ReplyCache(llm.cache_path),
                        budget, source, target, batch_size=config.batch_size,
                        context_lines=config.context_lines,
                        summary=_summary(glossary), on_cache_hits=st.record_cache_hits("enhance"),
                        progress=st.log_progress("enhanced_translation"))
    st.context.log.info(
        f"enhancing {len(reasons)} of {len(lines)} segments with "
        f"{' then '.join(s.label for s in specs)}; budget left ${budget.room():.4f} "
        + (f"and {budget.seconds_limit:.0f} s of requests " if budget.seconds_limit else "") +
        f"(title ${title_spent:.4f} of ${config.title_budget_usd:.2f}, today "
        f"${day_spent:.4f} of ${llm.daily_budget_usd:.2f})")
    out = enhancer.run(lines, reasons, terms, cultural)
    short = {s: out.count(s) for s in NOT_ENHANCED if out.count(s)}
    for kind, n in short.items():
        fallback = f"{n} segment(s) keep their MT text"
        # Errors about over-long answers go with over_char_budget, the others with the rest.
        errors = [e for e in out.errors
                  if ("(over_char_budget)" in e) == (kind == "over_char_budget")]
        message = ((f"the {budget.seconds_limit:.0f} s of requests this title may take "
                    f"(CPW_ENHANCE_LOCAL_TIME_SHARE) or the title's or the day's budget would "
                    "be exceeded" if budget.seconds_limit else
                    "the title's or the day's budget would be exceeded") if kind == "budget"
                   else "; ".join(errors)[-2000:])
        st.record("degradations", [{"service": specs[0].provider, "kind": f"enhance_{kind}",
                                    "message": message, "fallback": fallback}])
        st.context.log.warning(f"enhancement {kind}: {fallback} ({message[:300]})")
    status = ("enhanced" if not short else
              "partly enhanced: " + ", ".join(f"{n} {k}" for k, n in short.items()))
    enhanced = _write(output, document, baseline, out.text, reasons, out.status, status, out.by,
                      {ln.id: ln.max_chars for ln in lines})
    _confirm_suggestions(st, glossary, out.text, out.status)
    st.context.log.info(
        f"enhanced {out.count('enhanced')} segments, {out.cache_hits} from cache, "
        f"{out.requests} requests, {out.input_tokens}+{out.output_tokens} tokens, "
        f"${out.cost_usd:.5f}")
    return base | {
        "status": status, "enhanced": out.count("enhanced"), "cache_hits": out.cache_hits,
        "requests": out.requests, "input_tokens": out.input_tokens,
        "output_tokens": out.output_tokens, "cost_usd": round(out.cost_usd, 6),
        "not_enhanced": sum(short.values()), "budget_stopped": out.budget_stopped,
        "over_char_budget": out.count("over_char_budget"),
    }, enhanced


def _confirm_suggestions(st: Stage, glossary: dict[str, Any], texts: dict[int, str],
                         status: dict[int, str]) -> None:
    """The context learner's suggested names that the LLM wrote in lines it was trusted with
    (the answers passed the name checks): recorded in ``context_terms`` as confirmed by
    ``enhancement``, so the memory counts them for the next titles."""
    suggested = [t for t in glossary.get("terms", ()) if t.get("suggested")
                 and t.get("kind") in ("character", "actor")]
    accepted = [texts[i] for i, s in status.items()
                if s in ("enhanced", "cached") and i in texts]
    used = [t for t in suggested if any(contains(text, t["term"]) for text in accepted)]
    if used:
        st.record("context_terms", context_rows(
            TitleContext.from_metadata(glossary.get("metadata", {})),
            [{**t, "source": "enhancement"} for t in used], []))
        st.context.log.info(f"context learner: {len(used)} suggested names confirmed by the "
                            f"enhanced lines: {', '.join(t['term'] for t in used[:8])}")


def _write(output: Path, document: dict, baseline: list[Segment], texts: dict[int, str],
           reasons: dict[int, list[str]], status: dict[int, str], summary: str,
           by: dict[int, str] | None = None,
           max_chars: dict[int, int | None] | None = None) -> list[Segment]:
    by, max_chars = by or {}, max_chars or {}
    segments = [replace(s, text=texts.get(s.id, s.text)) for s in baseline]
    write_json(output, {
        **{k: v for k, v in document.items() if k != "segments"},
        "enhancement": summary,
        "segments": [asdict(s) for s in segments],
        "decisions": [{"id": s.id, "status": status.get(s.id, "kept"),
                       "reasons": reasons.get(s.id, []), "by": by.get(s.id),
                       "max_chars": max_chars.get(s.id)}
                      for s in baseline],
    })
    return segments


def _quality(st: Stage, inputs: _Inputs, enhanced: list[Segment],
             reference: Path | None) -> dict:
    terms = inputs.glossary.get("terms", [])
    ref_lines = None
    if reference is not None:
        try:
            ref_lines = load_reference(reference)
        except MediaError as error:  # an optional input: score without it, say why
            st.record("input_errors", [{"path": str(reference), "error_class": "MediaError",
                                        "message": str(error)}])
            st.context.log.warning(f"reference not used: {error}")
            reference = None
    base_scores, _ = score(inputs.transcript, inputs.baseline, terms, ref_lines)
    enh_scores, broken = score(inputs.transcript, enhanced, terms, ref_lines,
                               baseline=inputs.baseline)
    ref_name = reference.name if reference else None
    st.record("quality", [
        {"variant": variant, "metric": metric, "value": value, "reference": ref_name}
        for variant, scores in (("baseline", base_scores), ("enhanced", enh_scores))
        for metric, value in scores.items() if value is not None
    ])
    if broken:
        st.context.log.warning(f"names broken in the enhanced text: {broken[:5]}")
    return {"reference": ref_name or "none", "baseline_scores": base_scores,
            "enhanced_scores": enh_scores, "broken_names": broken}


def _public(result: dict) -> dict:
    """Metadata: scores as numbers (plotted over time), the rest as it is."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if key.endswith("_scores"):
            variant = key.removesuffix("_scores")
            flat |= {f"{variant}_{m}": v for m, v in value.items() if v is not None}
        elif key == "broken_names":
            flat["broken_names"] = len(value)
        else:
            flat[key] = value
    return flat


def _checks(*results: dict | None) -> list[AssetCheckResult]:
    """The checks over every language's result (none: nothing to enhance)."""
    done = [r for r in results if r is not None]
    worse: dict[str, tuple] = {}
    for result in done:
        base, enh = result["baseline_scores"], result["enhanced_scores"]
        worse |= {m: (base[m], enh[m]) for m in ("bleu", "chrf", "glossary_adherence",
                                                 "rule_compliance")
                  if base.get(m) is not None and enh.get(m) is not None
                  and enh[m] < base[m] - 1e-9}
    not_enhanced = sum(r["not_enhanced"] for r in done)
    broken = [name for r in done for name in r["broken_names"]]
    status = "; ".join(r["status"] for r in done) or "no translation to enhance"
    return [
        AssetCheckResult(
            check_name="enhancement_complete", passed=not_enhanced == 0,
            severity=AssetCheckSeverity.WARN,
            description="every selected segment enhanced (none kept for budget, failures, "
                        "bad or over-long replies)",
            metadata={"status": status, "not_enhanced": not_enhanced},
        ),
        AssetCheckResult(
            check_name="not_worse_than_baseline", passed=not worse,
            severity=AssetCheckSeverity.WARN,
            description="enhanced scores are not below the translation's",
            metadata={m: f"{b} → {e}" for m, (b, e) in worse.items()} or {"worse": "none"},
        ),
        AssetCheckResult(
            check_name="names_intact", passed=not broken,
            severity=AssetCheckSeverity.ERROR,
            description="glossary names spelled right and none the translation had dropped",
            metadata={"broken_names": len(broken),
                      "examples": MetadataValue.json(broken[:5])},
        ),
    ]
