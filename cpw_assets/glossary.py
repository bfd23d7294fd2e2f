"""``glossary``: names and terms from sidecars, counted in the transcript."""


import json

from dagster import AssetExecutionContext, MaterializeResult, asset

from cpw_assets.partitions import titles
from cpw_assets.stage import stage
from cpw_assets.transcript import transcript
from cpw_resources.atomic import write_json
from cpw_resources.cache import sha256_file
from cpw_resources.dagster_resource import CpwResource
from cpw_resources.glossary import build_glossary, sidecar
from cpw_resources.records import read_segments


@asset(partitions_def=titles, group_name="language", deps=[transcript])
def glossary(context: AssetExecutionContext, cpw: CpwResource) -> MaterializeResult:
    """Character names and terms for this title and how often the transcript says them."""
    with stage(context, cpw, "glossary") as st:
        sidecars = [p for suffix in (".json", ".glossary.tsv")
                    if (p := sidecar(st.title.media, suffix)).is_file()]
        st.timer.inputs.extend(sidecars)
        output = st.artifact("glossary.json", output=True)
        result = st.reuse(transcript=st.input_hash("transcript.json"),
                          sidecars={p.name: sha256_file(p) for p in sidecars})
        if result is None:
            segments = read_segments(json.loads(st.artifact("transcript.json").read_text()))
            built = build_glossary(st.title.media, segments)
            write_json(output, built)
            if not built["sources"]:
                context.log.info("no sidecar JSON or glossary TSV beside the media; "
                                 "glossary holds only names found in the transcript")
            result = st.save({
                "terms": len(built["terms"]),
                "terms_found": len(built["found_terms"]),
                "candidate_names": len(built["candidate_names"]),
                "sources": ", ".join(built["sources"]) or "transcript only",
            })
    return MaterializeResult(metadata=st.metadata(result))
