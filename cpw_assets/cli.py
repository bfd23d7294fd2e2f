"""``cpw``: register media files as titles, run them, show where they stand.

    cpw run PATH... [--model M] [--language L] [--target T] [--bilingual]
                    [--enhance PROVIDER:MODEL] [--config run.yaml] [-v]
                           register and materialise every asset in this process; print
                           the subtitle paths (progress on stderr; -v: Dagster's own lines)
    cpw register PATH...   register each file; print its partition key (one line each)
    cpw list               every registered title: key, last outcome, media file
    cpw status [KEY...]    each stage's last outcome (done, cached, failed), cost so far,
                           and the title's files
    cpw outputs KEY...     print every subtitle file of registered titles
    cpw env                print the shell exports that point scripts at this instance
    cpw store check        list unreadable event files and other store problems (exit 1)
    cpw store repair       quarantine them, rewrite schema files, recreate the views

The flags of ``cpw run`` set the matching settings for that run (``--model`` is
``CPW_WHISPER_MODEL``, ``--language`` ``CPW_LANGUAGE``, ``--target`` ``CPW_TARGET_LANGUAGES``
(one language or several: ``en,de``),
``--bilingual`` ``CPW_BILINGUAL``, ``--enhance`` ``CPW_ENHANCE_PROVIDER``); ``--config`` is a
Dagster run config (the launchpad's YAML, as ``dagster job execute --config`` takes). A bad
setting or flag is one line on stderr and exit 2.

``DAGSTER_HOME`` defaults to ``$CPW_HOME/dagster`` (see
:mod:`cpw_resources.orchestration.instance`). ``cpw register`` only writes the title registry
(no Dagster import: it is the cheap first half of a script); the titles it registers become
partitions of the instance at ``DAGSTER_HOME`` when ``dagster job execute`` (or ``dg``, the
UI's code server, the inbox sensor) next loads the definitions. ``cpw run``, ``list`` and
``status`` also free the pool slots of runs whose process died.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from cpw_resources.atomic import require_writable
from cpw_resources.errors import ConfigError, CpwError
from cpw_resources.settings import Settings

if TYPE_CHECKING:
    from dagster import DagsterInstance


def _instance(settings: Settings) -> DagsterInstance:
    """The instance at DAGSTER_HOME, with dead runs marked failed (and recorded)."""
    from dagster import DagsterInstance

    from cpw_resources.orchestration.home import ensure_dagster_home
    from cpw_resources.orchestration.instance import recover_dead_runs
    from cpw_resources.store.events import EventStore

    ensure_dagster_home(settings)
    instance = DagsterInstance.get()
    events = EventStore(settings.events_dir, settings.duckdb_path)
    for run in recover_dead_runs(instance, events):
        print(f"cpw: run {run.run_id} ({run.title}) had died; marked failed and freed its "
              f"slots ({run.reason})", file=sys.stderr)
    return instance


def _register(paths: Sequence[str]) -> list[str]:
    """Register ``paths`` in the title registry; their keys. The Dagster partitions follow
    when the definitions next load (:func:`~cpw_resources.orchestration.partitions.sync_at_load`:
    ``dagster job execute``, ``dg launch``, the UI's code server) or the inbox sensor ticks,
    so registering needs no Dagster import of its own (2 s less per script call)."""
    from cpw_resources.orchestration.home import (
        ensure_dagster_home,
        ensure_partitions,
        instance_ready,
    )
    from cpw_resources.store.titles import TitleRegistry

    settings = Settings()
    require_writable(settings.home_dir, "CPW_HOME")
    home = ensure_dagster_home(settings)  # the instance the next `dagster job execute` opens
    registry = TitleRegistry(settings.titles_dir)
    registered = registry.register_many([Path(p) for p in paths])
    if not instance_ready(home):
        # A new home: create Dagster's storage now, once, so that runs started together
        # afterwards do not all create it at the same time.
        ensure_partitions(home, registry)
    return [registered[Path(p)].key for p in paths]


def cmd_register(args: argparse.Namespace) -> int:
    for key in _register(args.paths):
        print(key)
    return 0


#: ``cpw run`` flag → the setting it sets for the run.
RUN_FLAGS = {"model": "CPW_WHISPER_MODEL", "language": "CPW_LANGUAGE",
             "target": "CPW_TARGET_LANGUAGES", "enhance": "CPW_ENHANCE_PROVIDER"}


def _apply_flags(args: argparse.Namespace) -> None:
    """Set the settings ``cpw run``'s flags name, before anything reads the settings."""
    import os

    for flag, variable in RUN_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[variable] = value
    if getattr(args, "bilingual", False):
        os.environ["CPW_BILINGUAL"] = "true"


def _run_config(args: argparse.Namespace) -> dict:
    """The run config: ``--config``'s YAML, with the console logger ``cpw run`` prints with."""
    config: dict = {}
    if args.config:
        import yaml

        path = Path(args.config)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"--config {path}: cannot be read ({error.strerror})") from error
        except yaml.YAMLError as error:
            raise ConfigError(f"--config {path}: not valid YAML "
                              f"({str(error).splitlines()[0]})") from error
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: must be a mapping (ops:, resources:, ...) "
                              f"as in the launchpad")
        config = dict(loaded or {})
    if args.verbose:
        config.setdefault("loggers", {"console": {"config": {"log_level": "DEBUG"}}})
    else:
        config.setdefault("loggers", {"cpw_console": {}})
    return config


def cmd_run(args: argparse.Namespace) -> int:
    _apply_flags(args)
    settings = Settings()  # a bad setting or flag stops here, in one line
    _refuse_unreachable_languages(settings)
    run_config = _run_config(args)
    from dagster import DagsterInvalidConfigError

    from cpw_assets.definitions import defs
    from cpw_resources.orchestration.partitions import sync_titles
    from cpw_resources.store.titles import TitleRegistry

    keys = _register(args.paths)
    job = defs.resolve_job_def("subtitle_job")
    failed = 0
    with _instance(settings) as instance:
        sync_titles(instance, TitleRegistry(settings.titles_dir))
        for key in dict.fromkeys(keys):
            try:
                result = job.execute_in_process(
                    partition_key=key, instance=instance, raise_on_error=False,
                    run_config=run_config)
            except DagsterInvalidConfigError as error:
                raise ConfigError(f"--config {args.config}: {_config_problem(error)}") from error
            if result.success:
                for path in _outputs(settings, key):
                    print(path)
            else:
                failed += 1
                for event in result.all_events:
                    if event.is_step_failure:
                        error = event.event_specific_data.error
                        print(f"cpw: {key}: {event.step_key} failed: {error.message.strip()}",
                              file=sys.stderr)
    return 1 if failed else 0


def _refuse_unreachable_languages(settings: Settings) -> None:
    """A target language no configured backend can produce stops the command before any run
    (the title is not marked failed), naming the backends that could."""
    from cpw_resources.language.targets import unreachable

    why = unreachable(settings.languages, settings.language, settings.translation_backend)
    if why:
        raise ConfigError(why)


def _config_problem(error: Exception) -> str:
    errors = getattr(error, "errors", None) or []
    lines = [getattr(e, "message", str(e)).strip().splitlines()[0] for e in errors[:3]]
    return "; ".join(lines) or str(error).splitlines()[0]


def _outputs(settings: Settings, key: str) -> list[Path]:
    """Every subtitle file the title has (any language, bilingual ones too), else the ones
    the current settings would write."""
    from cpw_resources.store.files import TitleFiles

    files = TitleFiles(settings.title_dir(key), key)
    found = sorted(p for p in files.dir.glob(f"{key}.*") if p.suffix in (".srt", ".vtt"))
    return found or list(files.subtitles(settings.target_language).values())


def cmd_outputs(args: argparse.Namespace) -> int:
    from cpw_resources.store.titles import TitleRegistry

    settings = Settings()
    registry = TitleRegistry(settings.titles_dir)
    missing = 0
    for key in args.keys:
        registry.get(key)
        for path in _outputs(settings, key):
            if path.exists():
                print(path)
            else:
                missing += 1
                print(f"cpw: {path} does not exist yet; run the title first", file=sys.stderr)
    return 1 if missing else 0


def _last_outcomes(settings: Settings) -> dict[str, str]:
    """Each title's last run outcome and when, from the ``runs`` events."""
    import polars as pl

    from cpw_resources.store.events import EventStore

    runs = EventStore(settings.events_dir, settings.duckdb_path).read("runs")
    if runs.is_empty():
        return {}
    latest = runs.sort("ts").group_by("title").agg(pl.col("status").last(), pl.col("ts").last())
    return {title: f"{status} {ts:%Y-%m-%d %H:%M}" for title, status, ts in latest.iter_rows()}


def cmd_list(args: argparse.Namespace) -> int:
    from cpw_resources.store.titles import TitleRegistry

    settings = Settings()
    titles = TitleRegistry(settings.titles_dir).all()
    if not titles:
        print(f"cpw: no titles registered in {settings.home_dir}; `cpw run FILE` or "
              f"`cpw register FILE`", file=sys.stderr)
        return 0
    outcomes = _last_outcomes(settings)
    width = max(len(t.key) for t in titles)
    for title in sorted(titles, key=lambda t: t.key):
        print(f"{title.key:<{width}}  {outcomes.get(title.key, 'never run'):<26}  "
              f"{title.media}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import polars as pl

    from cpw_resources.store.events import EventStore
    from cpw_resources.store.titles import TitleRegistry

    settings = Settings()
    registry = TitleRegistry(settings.titles_dir)
    keys = args.keys or sorted(t.key for t in registry.all())
    store = EventStore(settings.events_dir, settings.duckdb_path)
    stages, calls = store.read("stage_metrics"), store.read("api_calls")
    for key in keys:
        title = registry.get(key)
        print(f"{key}  ({title.media})")
        mine = stages.filter(pl.col("title") == key).sort("ts")
        if mine.is_empty():
            print("  never run")
        for row in mine.group_by("asset", maintain_order=True).last().iter_rows(named=True):
            state = ("cached" if row["cache_hit"] and row["status"] == "success" else
                     "done" if row["status"] == "success" else row["status"])
            took = f"{row['wall_seconds']:.1f} s" if row["wall_seconds"] is not None else ""
            error = f"  {row['error_class']}" if row["error_class"] else ""
            print(f"  {row['asset']:<22} {state:<8} {took:>9}  {row['ts']:%Y-%m-%d %H:%M}"
                  f"{error}")
        spent = calls.filter(pl.col("title") == key)["cost_usd"].fill_null(0.0).sum() \
            if not calls.is_empty() else 0.0
        print(f"  cost so far: ${spent:.4f}")
        for path in _outputs(settings, key):
            print(f"  {path}{'' if path.exists() else ' (not written yet)'}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    settings = Settings()
    with _instance(settings):
        pass
    print(f"export CPW_HOME={settings.home_dir}")
    print(f"export DAGSTER_HOME={settings.dagster_home}")
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    import logging

    from cpw_resources.store.events import EventStore

    logging.getLogger(EventStore.__module__).setLevel(logging.ERROR)  # we print each repair
    settings = Settings()
    store = EventStore(settings.events_dir, settings.duckdb_path)
    if args.action == "check":
        findings = store.check()
        for finding in findings:
            print(finding)
        if findings:
            print(f"cpw: {len(findings)} problem(s) in {settings.home_dir}; "
                  "`cpw store repair` fixes them", file=sys.stderr)
        return 1 if findings else 0
    report = store.repair()
    for line in report.done:
        print(line)
    for line in report.left:
        print(f"cpw: {line}", file=sys.stderr)
    if not report.done and not report.left:
        print(f"cpw: nothing to repair in {settings.home_dir}", file=sys.stderr)
    return 1 if report.left else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cpw", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="register and process media files end to end, in process")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--model", help="Whisper model (CPW_WHISPER_MODEL): tiny.en, base, ...")
    p.add_argument("--language", help="spoken language (CPW_LANGUAGE): hi, fr, ...; "
                                      "default: the sidecar's, else detected")
    p.add_argument("--target", help="subtitle language(s), comma-separated "
                                    "(CPW_TARGET_LANGUAGES): en, or en,de; default en")
    p.add_argument("--bilingual", action="store_true",
                   help="also write source-above-target subtitles (CPW_BILINGUAL)")
    p.add_argument("--enhance", metavar="PROVIDER:MODEL",
                   help="LLM post-editing (CPW_ENHANCE_PROVIDER), e.g. openai:gpt-4o-mini")
    p.add_argument("--config", metavar="run.yaml",
                   help="a Dagster run config (the launchpad's YAML)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="Dagster's own log lines (DEBUG) instead of progress")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("register", help="register media files; print their partition keys")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_register)
    sub.add_parser("list", help="every registered title and its last outcome").set_defaults(
        func=cmd_list)
    p = sub.add_parser("status", help="each stage's last outcome, cost, files of titles")
    p.add_argument("keys", nargs="*", metavar="KEY")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("outputs", help="print the subtitle files of registered titles")
    p.add_argument("keys", nargs="+", metavar="KEY")
    p.set_defaults(func=cmd_outputs)
    sub.add_parser("env", help="print shell exports for CPW_HOME and DAGSTER_HOME").set_defaults(
        func=cmd_env
    )
    p = sub.add_parser("store", help="check or repair the event store (events/, cpw.duckdb)")
    p.add_argument("action", choices=["check", "repair"])
    p.set_defaults(func=cmd_store)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValidationError as error:
        print(f"cpw: error: {_setting_problem(error)}", file=sys.stderr)
        return 2
    except CpwError as error:
        print(f"cpw: error: {error}", file=sys.stderr)
        _record_input_error(args.command, error)
        return 2


def _setting_problem(error: ValidationError) -> str:
    """A settings error in one line: which setting (its variable), what is wrong, the value."""
    parts = []
    for item in error.errors()[:3]:
        field = ".".join(str(x) for x in item["loc"])
        variable = f"CPW_{field.upper()}" if field else "a setting"
        parts.append(f"{variable}: {item['msg']} (got {item.get('input')!r})")
    return "invalid setting " + "; ".join(parts) + (
        " — fix the environment variable or cpw.yaml" if parts else str(error))


def _record_input_error(command: str, error: CpwError) -> None:
    """An ``input_errors`` event for an error about a file, where the store can be written."""
    from cpw_resources.store.events import EventStore

    path = getattr(error, "path", None)
    if path is None:
        return
    try:
        settings = Settings()
        EventStore(settings.events_dir, settings.duckdb_path).append(
            "input_errors", [{"path": str(path), "error_class": type(error).__name__,
                              "message": str(error)}],
            run_id="", title="", asset=f"cpw {command}")
    except (CpwError, OSError):
        pass  # the store is not writable (read-only or full CPW_HOME): the line above says so


if __name__ == "__main__":
    sys.exit(main())
