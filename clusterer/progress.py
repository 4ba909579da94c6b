"""Logging set-up and stage progress: a live display on a terminal, periodic log lines otherwise.

Everything the tool says while it works goes through the standard ``logging`` module (logger
``clusterer``) to stderr, as text or as one JSON object per line (``--log-format json``); the end-of-run
summary is the only thing written to stdout. :class:`Reporter` times each stage, records peak memory, and
shows progress: on a terminal a transient rich progress line per stage (a bar where the stage knows its
total), elsewhere a log line every ``CLUSTERER_PROGRESS_SECONDS`` (30) seconds while a stage runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("clusterer")

_THIRD_PARTY = ("transformers", "sentence_transformers", "model2vec", "huggingface_hub", "torch", "numba", "faiss")
_console: Any = None


def stderr_console() -> Any:
    """The one rich Console on stderr shared by the log handler and the progress display."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True)
    return _console


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and any ``extra`` fields."""

    _skip = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in self._skip and not k.startswith("_")})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(quiet: bool = False, fmt: str = "text") -> None:
    """Route the tool's and its libraries' logging to stderr (text or JSON lines).

    ``quiet`` keeps warnings and errors only, for the tool and for third-party libraries (model loading
    reports, download and encoding progress bars).
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    if fmt == "json":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(console=stderr_console(), show_path=False, markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    quiet_third_party(all_output=quiet or not sys.stderr.isatty() or fmt == "json")


def quiet_third_party(all_output: bool = True) -> None:
    """Keep libraries' own chatter off the console: their loggers at ERROR (transformers' load report is a
    WARNING), and with ``all_output`` their progress bars too (tqdm, Hugging Face). Takes effect for
    libraries imported afterwards; the tool imports them lazily, after this runs."""
    for name in _THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if all_output:
        os.environ.setdefault("TQDM_DISABLE", "1")


def peak_rss_mb() -> float:
    """Process-wide peak resident memory so far, MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


class Reporter:
    """Per-stage seconds and peak RSS, with progress while a stage runs.

    ``live``: draw a rich progress display (default: when stderr is a terminal and not ``quiet``);
    otherwise a background thread logs ``<stage>: running for N s[, done / total]`` every ``interval``
    seconds (default ``$CLUSTERER_PROGRESS_SECONDS`` or 30), so unattended logs show a long stage is alive.
    """

    def __init__(self, quiet: bool = False, interval: float | None = None, live: bool | None = None) -> None:
        self.quiet = quiet
        self.interval = interval if interval is not None else float(os.environ.get("CLUSTERER_PROGRESS_SECONDS", 30))
        self.live = (sys.stderr.isatty() and not quiet) if live is None else live
        self.stages: dict[str, dict[str, float]] = {}

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """Time a stage; yields ``advance(n)`` to report ``n`` more units done (of ``total``)."""
        t0 = time.perf_counter()
        done = [0]
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            cols: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if total is not None:
                cols += [BarColumn(), MofNCompleteColumn()]
            with Progress(*cols, TimeElapsedColumn(), console=stderr_console(), transient=True) as bar:
                task = bar.add_task(name, total=total)

                def advance(n: int) -> None:
                    done[0] += n
                    bar.advance(task, n)

                yield advance
        else:
            stop = threading.Event()

            def beat() -> None:
                while not stop.wait(self.interval):
                    secs = time.perf_counter() - t0
                    of = f", {done[0]:,} / {total:,} done" if total else ""
                    log.info("%s: running for %.0f s%s", name, secs, of, extra={"stage": name, "running_s": secs})

            thread = threading.Thread(target=beat, name=f"progress-{name}", daemon=True)
            thread.start()
            try:
                yield lambda n: done.__setitem__(0, done[0] + n)
            finally:
                stop.set()
                thread.join()
        secs = time.perf_counter() - t0
        self.stages[name] = {"seconds": round(secs, 3), "peak_rss_mb": peak_rss_mb()}
        log.info(
            "%s: %.1f s, peak RSS %.0f MiB",
            name,
            secs,
            self.stages[name]["peak_rss_mb"],
            extra={"stage": name, "seconds": round(secs, 3), "peak_rss_mb": self.stages[name]["peak_rss_mb"]},
        )
