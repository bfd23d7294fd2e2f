"""The optimizer in a real title run: rules before a model exists, a pin in the sidecar, a
trained model's choice, the decision recorded; and the retrain asset over the event store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from dagster import materialize

from cpw_assets.optimizer import optimizer_model
from cpw_resources.optimizer.candidates import Candidate, candidates
from cpw_resources.optimizer.model import ModelStore, audio_vector, examples_from_rows, train
from cpw_resources.orchestration.resources import resources_for
from cpw_resources.settings import Settings
from tests.conftest import JFK, copy_to

SPACE = candidates(["tiny.en", "base"], english=True)


def labelled_rows(n_recordings: int, seed: int = 0, noise: float = 0.003) -> list[dict]:
    """training_examples rows of a known law: the small model is as good on clean audio and
    three times faster; on noisy audio it loses."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_recordings):
        snr = float(rng.uniform(0, 70))
        for c in SPACE:
            small = c.model == "tiny.en"
            wer = 0.05 + max(0.0, 15 - snr) * (0.012 if small else 0.004)
            rtf = (0.03 if small else 0.09) * (1 + 0.15 * (c.beam_size - 1))
            rows.append({"recording": f"rec{r}", "duration_s": 60.0, "loudness_dbfs": -20.0,
                         "speech_ratio": 0.6, "music_ratio": 0.02, "silence_ratio": 0.1,
                         "snr_db": snr, "highband_ratio": 0.05, "spectral_flatness": 0.01,
                         "speech_rate": 3.5, "language": "en", "language_probability": 1.0,
                         "model": c.model, "beam_size": c.beam_size,
                         "vad_threshold": c.vad_threshold,
                         "temperature_fallback": c.temperature_fallback,
                         "wer": wer + rng.normal(0, noise),
                         "realtime_factor": rtf * math.exp(rng.normal(0, 0.03)),
                         "source": "corpus"})
    return rows


def transcript_metadata(run) -> dict:
    mat = next(m for m in run.result.asset_materializations_for_node("transcript"))
    return mat.metadata["optimizer"].value


def test_rules_decide_before_any_model_and_say_so(run_title, media_dir, store) -> None:
    run = run_title(copy_to(JFK, media_dir, "speech.wav"), optimizer="on",
                    whisper_model="tiny.en")
    assert run.success
    chosen = transcript_metadata(run)
    assert chosen["source"] == "rules" and "no optimizer model trained yet" in chosen["reason"]
    assert chosen["config"] == Candidate("tiny.en", 5).key  # clean speech: the default
    decisions = store.read("optimizer_decisions")
    assert decisions.height == 1 and decisions["source"][0] == "rules"
    assert decisions["measured_seconds_per_audio_s"][0] > 0
    assert decisions["features_seconds"][0] < 1.0  # no detection, no model: cheap
    examples = store.read("training_examples")
    assert examples["recording"][0] == run.key and examples["speech_rate"][0] > 0
    assert examples["vad_threshold"][0] == 0.5 and examples["temperature_fallback"][0]


def test_a_sidecar_pins_the_config(run_title, media_dir, store) -> None:
    media = copy_to(JFK, media_dir, "pinned.wav")
    media.with_name("pinned.json").write_text(json.dumps(
        {"whisper": {"model": "tiny.en", "beam_size": 1, "temperature_fallback": False}}))
    run = run_title(media, optimizer="on", whisper_model="base")
    assert run.success
    chosen = transcript_metadata(run)
    assert chosen["source"] == "pinned"
    transcript = json.loads((run.dir / "transcript.json").read_text())
    assert transcript["config"]["model"] == "tiny.en"
    assert transcript["config"]["beam_size"] == 1
    assert transcript["config"]["temperature_fallback"] is False
    assert store.read("optimizer_decisions")["config"][0] == Candidate(
        "tiny.en", 1, 0.5, False).key


def test_a_bad_pin_is_a_clear_error(run_title, media_dir) -> None:
    media = copy_to(JFK, media_dir, "badpin.wav")
    media.with_name("badpin.json").write_text(json.dumps({"whisper": {"beam_size": 0}}))
    run = run_title(media, optimizer="on")
    assert not run.success
    failure = next(e for e in run.result.all_events if e.is_step_failure)
    message = failure.event_specific_data.error.message
    assert "badpin.json" in message and "model" in message and "beam_size" in message


def test_a_trained_model_chooses_and_the_retrain_asset_keeps_the_better(
        run_title, media_dir, store, home: Path) -> None:
    settings = Settings(home=home, optimizer_min_examples=100)
    store.append("training_examples", labelled_rows(30), run_id="bench", title="",
                 asset="bench")
    resources = resources_for(settings)
    first = materialize([optimizer_model], resources=resources)
    assert first.success
    meta = first.asset_materializations_for_node("optimizer_model")[0].metadata
    assert meta["became_current"].value is True and meta["current_version"].value == "v0001"
    assert meta["feature_importance"].value and meta["holdout"].value["rows"] > 0

    # Labels that are mostly noise: the retrain scores worse on the held-out recordings and
    # the current model stays, with the reason recorded.
    store.append("training_examples", labelled_rows(30, seed=1, noise=0.3)[:400],
                 run_id="bench2", title="", asset="bench")
    second = materialize([optimizer_model], resources=resources)
    meta = second.asset_materializations_for_node("optimizer_model")[0].metadata
    assert meta["became_current"].value is False, meta["reason"].value
    assert "stays" in meta["reason"].value and meta["current_version"].value == "v0001"
    trainings = store.read("optimizer_models").sort("ts")
    assert trainings["became_current"].to_list() == [True, False]

    run = run_title(copy_to(JFK, media_dir, "learned.wav"), optimizer="on",
                    whisper_model="base", optimizer_min_examples=100)
    assert run.success
    chosen = transcript_metadata(run)
    assert chosen["source"] == "v0001" and chosen["predicted_wer"] is not None
    # jfk.wav is clean English (SNR ~23 dB): by the law the small model is as good, and faster.
    assert chosen["config"].startswith("tiny.en/"), chosen
    assert chosen["features_seconds"] < 10


def test_examples_round_trip_through_the_store(store) -> None:
    store.append("training_examples", labelled_rows(3), run_id="r", title="", asset="bench")
    examples = examples_from_rows(store.read("training_examples").to_dicts())
    assert len(examples) == 3 * len(SPACE)
    model = train(examples)
    saved = ModelStore(store.events_dir.parent / "optimizer")
    saved.save(model, make_current=True)
    assert saved.current().predict(audio_vector(labelled_rows(1)[0]), SPACE[:1])


def test_a_title_that_explores_decodes_a_slice_with_a_neighbour(run_title, media_dir, store,
                                                                 tmp_path) -> None:
    from cpw_resources.speech.media import SAMPLE_RATE, load_wav, write_wav

    jfk = load_wav(JFK)
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    film = write_wav(media_dir / "six times.wav", np.concatenate([jfk, pause] * 6))
    run = run_title(film, optimizer="on", optimizer_explore_share=1.0,
                    optimizer_explore_seconds=30.0)
    assert run.success
    chosen = transcript_metadata(run)
    trials = store.read("training_examples").filter(
        store.read("training_examples")["source"] == "exploration")
    assert trials.height == 2
    configs = [Candidate(m, b, v, f) for m, b, v, f in zip(
        trials["model"], trials["beam_size"], trials["vad_threshold"],
        trials["temperature_fallback"], strict=True)]
    assert configs[0].key == chosen["config"] and chosen["explored"] == configs[1].key
    assert sum(a != b for a, b in zip(vars(configs[0]).values(), vars(configs[1]).values(),
                                      strict=True)) == 1
    assert (trials["realtime_factor"] > 0).all() and trials["recording"][0] == run.key
    decision = store.read("optimizer_decisions")
    assert decision["explored_config"][0] == configs[1].key
    assert decision["explore_seconds"][0] > 0
    assert not (run.dir / ".explore.wav").exists()
    # Timed but unscored (no reference): they teach the time model, not the error model.
    rows = store.read("training_examples").to_dicts()
    assert len(examples_from_rows(rows, timed_only=True)) == 3
    assert len(examples_from_rows(rows)) == 0


def test_the_retrain_sensor_asks_once_enough_new_labels_arrived(store, home: Path,
                                                                instance) -> None:
    from dagster import RunRequest, SkipReason, build_sensor_context

    from cpw_sensors.optimizer import optimizer_retrain_sensor

    settings = Settings(home=home, optimizer_min_examples=100, optimizer_retrain_after=50)

    def evaluate():
        with build_sensor_context(instance=instance,
                                  resources=resources_for(settings)) as context:
            return optimizer_retrain_sensor(context)

    first = evaluate()
    assert isinstance(first, SkipReason) and "a model needs 100" in first.skip_message
    store.append("training_examples", labelled_rows(5), run_id="b", title="", asset="bench")
    asked = evaluate()
    assert isinstance(asked, RunRequest) and asked.job_name in (None, "optimizer_job")
    assert materialize([optimizer_model], resources=resources_for(settings)).success
    assert isinstance(evaluate(), SkipReason)  # the model has seen them all
    store.append("training_examples", labelled_rows(3, seed=2), run_id="c", title="",
                 asset="bench")
    again = evaluate()
    assert isinstance(again, RunRequest) and again.run_key != asked.run_key
