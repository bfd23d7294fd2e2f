"""``glossary``: names and terms from sidecars, counted in the transcript."""


import json

from dagster import AssetExecutionContext, MaterializeResult, asset

from cpw_assets.partitions import titles
from cpw_assets.stage import stage
from cpw_assets.transcript import transcript
from cpw_resources.atomic import write_json
from cpw_resources.dagster_resource import CpwResource
from cpw_resources.glossary import build_glossary, sidecar
from cpw_resources.records import read_segments


@asset(partitions_def=titles, group_name="language", deps=[transcript])
def glossary(context: AssetExecutionContext, cpw: CpwResource) -> MaterializeResult:
    """Character names and terms for this title and how often the transcript says them."""
    with stage(context, cpw, "glossary") as st:
        segments = read_segments(json.loads(st.artifact("transcript.json").read_text()))
        for suffix in (".json", ".glossary.tsv"):
            if (path := sidecar(st.title.media, suffix)).is_file():
                st.timer.inputs.append(path)
        result = build_glossary(st.title.media, segments)
        write_json(st.artifact("glossary.json", output=True), result)
        if not result["sources"]:
            context.log.info("no sidecar JSON or glossary TSV beside the media; "
                             "glossary holds only names found in the transcript")
    return MaterializeResult(metadata=st.metadata({
        "terms": len(result["terms"]),
        "terms_found": len(result["found_terms"]),
        "candidate_names": len(result["candidate_names"]),
        "sources": ", ".join(result["sources"]) or "transcript only",
    }))
