"""``cpw``: register media files as titles, run them, show where their subtitles are.

    cpw register PATH...   register each file; print its partition key (one line each)
    cpw run PATH...        register and materialise every asset in this process;
                           print the subtitle paths
    cpw outputs KEY...     print the subtitle paths of registered titles
    cpw env                print the shell exports that point scripts at this instance
    cpw store check        list unreadable event files and other store problems (exit 1)
    cpw store repair       quarantine them, rewrite schema files, recreate the views

``DAGSTER_HOME`` defaults to ``$CPW_HOME/dagster`` (see
:mod:`cpw_resources.orchestration.instance`), so the
partitions ``cpw register`` adds are the ones ``dagster job execute`` sees when run with the
same ``DAGSTER_HOME``. Every command but ``store`` also frees the pool slots of runs whose
process died.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dagster import DagsterInstance

from cpw_resources.atomic import require_writable
from cpw_resources.errors import CpwError
from cpw_resources.orchestration.instance import ensure_dagster_home, recover_dead_runs
from cpw_resources.settings import Settings


def _instance(settings: Settings) -> DagsterInstance:
    """The instance at DAGSTER_HOME, with dead runs marked failed (and recorded)."""
    from cpw_resources.store.events import EventStore

    ensure_dagster_home(settings)
    instance = DagsterInstance.get()
    events = EventStore(settings.events_dir, settings.duckdb_path)
    for run in recover_dead_runs(instance, events):
        print(f"cpw: run {run.run_id} ({run.title}) had died; marked failed and freed its "
              f"slots ({run.reason})", file=sys.stderr)
    return instance


def _register(paths: Sequence[str]) -> list[str]:
    from cpw_resources.orchestration.partitions import titles
    from cpw_resources.store.titles import TitleRegistry

    settings = Settings()
    require_writable(settings.home_dir, "CPW_HOME")
    registry = TitleRegistry(settings.titles_dir)
    registered = registry.register_many([Path(p) for p in paths])
    keys = [registered[Path(p)].key for p in paths]
    with _instance(settings) as instance:
        known = set(instance.get_dynamic_partitions(titles.name))
        new = [k for k in dict.fromkeys(keys) if k not in known]
        if new:
            instance.add_dynamic_partitions(titles.name, new)
    return keys


def cmd_register(args: argparse.Namespace) -> int:
    for key in _register(args.paths):
        print(key)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from cpw_assets.definitions import defs

    keys = _register(args.paths)
    job = defs.resolve_job_def("subtitle_job")
    settings = Settings()
    failed = 0
    with _instance(settings) as instance:
        for key in dict.fromkeys(keys):
            result = job.execute_in_process(
                partition_key=key, instance=instance, raise_on_error=False
            )
            if result.success:
                for path in _subtitle_paths(settings, key).values():
                    print(path)
            else:
                failed += 1
                for event in result.all_events:
                    if event.is_step_failure:
                        error = event.event_specific_data.error
                        print(f"cpw: {key}: {event.step_key} failed: {error.message.strip()}",
                              file=sys.stderr)
    return 1 if failed else 0


def _subtitle_paths(settings: Settings, key: str) -> dict[str, Path]:
    from cpw_resources.store.files import TitleFiles

    return TitleFiles(settings.title_dir(key), key).subtitles(settings.target_language)


def cmd_outputs(args: argparse.Namespace) -> int:
    from cpw_resources.store.titles import TitleRegistry

    settings = Settings()
    registry = TitleRegistry(settings.titles_dir)
    missing = 0
    for key in args.keys:
        registry.get(key)
        for path in _subtitle_paths(settings, key).values():
            if path.exists():
                print(path)
            else:
                missing += 1
                print(f"cpw: {path} does not exist yet; run the title first", file=sys.stderr)
    return 1 if missing else 0


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
    for name, func, help_text in (
        ("register", cmd_register, "register media files; print their partition keys"),
        ("run", cmd_run, "register and process media files end to end, in process"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("paths", nargs="+", metavar="PATH")
        p.set_defaults(func=func)
    p = sub.add_parser("outputs", help="print the subtitle paths of registered titles")
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
    except CpwError as error:
        print(f"cpw: error: {error}", file=sys.stderr)
        _record_input_error(args.command, error)
        return 2


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
