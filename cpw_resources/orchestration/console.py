"""What ``cpw run`` prints while a title runs: the stages' own lines, and their progress as
one bar per stage on a terminal (plain lines when the output is piped or a file).

It is a Dagster logger (``cpw_console``, in the definitions beside Dagster's ``console``) so it
sees every line a run logs; Dagster's own bookkeeping (step started, output handled, ...,
logged at DEBUG) is left out unless ``cpw run -v`` asks for Dagster's console logger instead.
A ``dagster job execute`` or a UI run configures no logger, so it gets Dagster's as before.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
from typing import IO

from dagster import Field, InitLoggerContext, logger

#: A stage's progress line (``_ProgressLog`` in cpw_assets/stage.py): "transcript: 40% (...)".
PROGRESS = re.compile(r"^(?P<label>[\w ]+): (?P<pct>\d{1,3})%(?: \((?P<rest>.*)\))?$")
BAR_WIDTH = 24


class ConsoleHandler(logging.Handler):
    """Writes a run's lines to ``stream``: a progress line redraws one bar when ``tty``."""

    def __init__(self, stream: IO[str], tty: bool) -> None:
        super().__init__(logging.INFO)
        self.stream, self.tty = stream, tty
        self.bar_open = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            meta = getattr(record, "dagster_meta", None) or {}
            if meta.get("dagster_event") is not None and record.levelno < logging.WARNING:
                return  # Dagster's bookkeeping (`cpw run -v` shows it)
            if meta.get("dagster_event") is not None and record.levelno >= logging.ERROR:
                return  # a step failure: `cpw run` prints it in one line when the run ends
            message = str(meta.get("orig_message") or record.getMessage())
            title = (meta.get("job_tags") or {}).get("dagster/partition")
            found = PROGRESS.match(message)
            if found is not None and self.tty:
                self._bar(found, title)
                return
            self._close_bar()
            level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
            self.stream.write(f"cpw: {title + ': ' if title else ''}{level}{message}\n")
            self.stream.flush()
        except Exception:  # a logger must never fail the run
            self.handleError(record)

    def _bar(self, found: re.Match[str], title: str | None) -> None:
        share = min(100, int(found["pct"]))
        filled = BAR_WIDTH * share // 100
        columns = shutil.get_terminal_size((100, 20)).columns
        label = f"{title}: {found['label']}" if title else found["label"]
        line = (f"{label:>28} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{share:3d}% {found['rest'] or ''}")
        self.stream.write("\r" + line[:columns - 1].ljust(min(columns - 1, len(line) + 8)))
        self.bar_open = share < 100
        if not self.bar_open:
            self.stream.write("\n")
        self.stream.flush()

    def _close_bar(self) -> None:
        if self.bar_open:
            self.stream.write("\n")
            self.bar_open = False


@logger(config_schema={"tty": Field(bool, is_required=False,
                                    description="draw progress bars (default: when stderr is "
                                                "a terminal)")},
        description="cpw run's console: the stages' lines and a progress bar per stage on a "
                    "terminal; Dagster's DEBUG bookkeeping left out.")
def cpw_console(init_context: InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config or {}
    tty = bool(config.get("tty", sys.stderr.isatty()))
    log = logging.getLogger("cpw.console")
    log.setLevel(logging.INFO)
    log.handlers = [ConsoleHandler(sys.stderr, tty)]
    log.propagate = False
    return log
