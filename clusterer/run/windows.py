"""Incremental detection: a day clustered window by window as it arrives (``clusterer stream``).

The day's prompts are cut into windows of ``every`` (aligned to UTC midnight) by timestamp; each window is
clustered with what earlier windows learned (:class:`~clusterer.run.stages.Carried`):

- the campaigns flagged earlier in the day (the registry): each row of the window carries the campaign whose
  scaffold it holds (the ``assign`` rule) or, for a carried exemplar, the campaign it was flagged with; a
  flagged family most of whose rows carry campaigns of earlier windows takes their one ID (several fragments
  of one campaign all take it), other flagged families are named by the registry (a known campaign's ID
  when their template matches, else a new one), and rows no family took that carry a campaign join the
  family holding it. Flags stay the window's own score;
- merges: a flagged family holding several campaigns the window joined as variants of one template (one
  template group, or a translation), and most of each one's rows in the window, merges them, and so do
  flagged campaigns whose families lend each other scaffold lines (re-worded variants on their own account
  pools, ``[cluster] join_variants``) — the one with the most prompts so far keeps its ID, the others are
  marked ``merged_into`` it in the registry and every later match of them takes that ID;
- the day's rhythm (``OUT/rhythm.parquet``): per campaign its flagged prompts per half hour so far, added to
  the time-of-day profile of the family holding it, so the family grouping's rhythm evidence sees the day so
  far (inside one hour a second job of the same accounts looks like a variant);
- the flagged campaigns' exemplars: per flagged campaign its ``per_campaign`` latest flagged prompts
  (``OUT/carry.parquet``) are clustered again with the next window, as context and not output;
- open families: a family the window did not flag that scored near the threshold and is one tight template
  keeps its latest prompts (``OUT/open.parquet``) for the next window's clustering, as context, and the
  accounts that sent it today (``OUT/open_accounts.parquet``): the family of the next window holding them
  counts those senders in its spread, as the batch run of the day would (:mod:`~clusterer.campaigns.open`);
- the day so far of the window's accounts: per account its earlier prompts today (the latest
  ``EARLIER_PER_ACCOUNT``, read from the input's earlier rows, and their count), matched to the window's
  families by template, so the account-focus and one-shot terms read the day so far: a load-balanced
  campaign sends each account one prompt an hour, which alone reads as neither focused nor returning
  (:mod:`~clusterer.campaigns.earlier`); the family grouping counts them as shared senders (its paraphrased
  variants share no account inside one hour), and two campaigns flagged over more than one window that it
  joins on behaviour are merged (:func:`~clusterer.run.stages.variant_pairs`);
- the registry accumulates the day: a campaign's daily row sums the windows' prompts (a day run windowed
  counts once, as a batch run of that day would), and campaigns of earlier windows stay when a later window
  does not see them.

Carried state: the registry directory (per campaign: template, centroid, frequent and scaffold shingles,
dates, daily rows, ``merged_into``), ``OUT/carry.parquet`` (the campaigns' exemplars),
``OUT/rhythm.parquet`` (the day's rhythm), ``OUT/open.parquet`` and ``OUT/open_accounts.parquet`` (the open
families) and ``OUT/stream.json`` (the windows done); the day so far of
the accounts is read again from the input's earlier rows, so nothing of it is kept. A restart reads
``stream.json`` and goes on with the first window not done. Per window: the state before it kept in
``OUT/before`` and the window marked ``pending`` in ``stream.json``; the output set, the registry, the carry,
rhythm and open families; then ``stream.json`` with the window done. A restart finding a pending window puts
the registry directory back to the kept state and runs the window again from it: each window counts once.

The logs may grow between runs (a day's part files as they arrive; ``clusterer watch`` reads them again
every few minutes, :class:`Live`): ``stream.json`` records per done window the digest of its rows, which
must still be in the logs unchanged (:func:`done_rows`); rows that arrived after their window was done go
with the next window to run (:func:`_windows_to_run`).

Memory: a day read from log files is held without its texts (each row's key of its text and its place in
the files, :class:`DayTexts`); a window's texts and its accounts' earlier prompts are read back from the
files when the window runs, so what a stream holds grows with the day's rows' metadata, not their texts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ..campaigns.earlier import Earlier
from ..campaigns.open import KEY, OpenFamilies, next_open
from ..config import RunConfig
from ..errors import InputError
from ..io.ingest import TEXT_AT, TEXT_KEY, LogsChanged, Prompts, content_digest, fetch_texts, text_key
from ..store.registry import (
    CAMPAIGN_SCHEMA,
    CONTENT_COLUMNS,
    DAILY_SCHEMA,
    Registry,
    aliases,
    apply_merges,
    campaign_stats,
    gather_variants,
)
from .stages import Carried

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    from numpy.typing import NDArray

    from ..result import Result

log = logging.getLogger(__name__)

STATE = "stream.json"
CARRY = "carry.parquet"
RHYTHM = "rhythm.parquet"
OPEN = "open.parquet"  # the open families' exemplars (campaigns.open) ...
OPEN_ACCOUNTS = "open_accounts.parquet"  # ... and the accounts that sent them today
TABLES = (CARRY, RHYTHM, OPEN, OPEN_ACCOUNTS)  # the carried tables, by file name
BEFORE = "before"  # the carried state before the window in progress (stream.json "pending")
CAMPAIGN = "_campaign"
# per account of a window, its latest earlier prompts today matched to the window's families (and its count of
# them all): the account-focus and one-shot terms read the day so far (campaigns.earlier)
EARLIER_PER_ACCOUNT = 8


def parse_duration(text: str, option: str = "--window", zero: bool = False) -> dt.timedelta:
    """'15m', '1h', '90s', '2h' → timedelta (whole seconds; '0s' too when ``zero``).

    Raises:
        InputError: not <number><s|m|h> (naming ``option``).
    """
    t = text.strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600}.get(t[-1:] or "")
    try:
        n = float(t[:-1]) if unit else float("nan")
    except ValueError:
        n = float("nan")
    sec = int(round(n * unit)) if unit and n == n else -1
    if sec < 0 or (sec == 0 and not zero):
        raise InputError(f"{option} {text!r}: expected a duration such as 15m, 1h or 90s")
    return dt.timedelta(seconds=sec)


def parse_every(text: str) -> dt.timedelta:
    """'15m', '1h', '90s', '2h' → timedelta.

    Raises:
        InputError: not <number><s|m|h>, or not a divisor of a day.
    """
    sec = int(parse_duration(text).total_seconds())
    if 86_400 % sec:
        raise InputError(f"--window {text!r}: a window must divide the day (e.g. 5m, 15m, 30m, 1h, 2h)")
    return dt.timedelta(seconds=sec)


def window_index(ts: pl.Series, every: dt.timedelta) -> pl.Series:
    """Window number of each timestamp: whole windows of ``every`` since 1970-01-01 UTC (so windows align to
    UTC midnight)."""
    us = ts.dt.epoch("us")
    return (us // int(every.total_seconds() * 1_000_000)).alias("_window")


def _content(prev: Registry, new: Registry) -> pl.DataFrame:
    """Each campaign's content columns (``CONTENT_COLUMNS`` and ``merged_into``) after a window: from the
    window's registry (``new``) where it has them, else as before it (``prev``)."""
    content_cols = [*CONTENT_COLUMNS, "merged_into"]
    # several fragments of one campaign in a window share its ID: their scaffold shingles together, the rest
    # from the first; and a campaign keeps the scaffold shingles and variants of every window (the variants
    # it ran), so a later window's variant still finds it
    fresh = new.campaigns.group_by("campaign_id", maintain_order=True).agg(
        pl.col("template").first(),
        pl.col("centroid").first(),
        pl.col("shingles").first(),
        pl.col("scaffold_shingles").list.explode(keep_nulls=False, empty_as_null=False),
        pl.col("scaffold_variants").drop_nulls().list.explode(keep_nulls=False, empty_as_null=False),
        pl.col("merged_into").drop_nulls().first(),
    )
    earlier = prev.campaigns.select(
        "campaign_id", pl.col("scaffold_shingles").alias("_old"), pl.col("scaffold_variants").alias("_old_v")
    )
    fresh = fresh.join(earlier, on="campaign_id", how="left").with_columns(
        pl.concat_list(pl.col("scaffold_shingles"), pl.col("_old").fill_null(pl.lit([], pl.List(pl.UInt64))))
        .list.unique()
        .list.sort()
        .alias("scaffold_shingles")
    )
    old_v, new_v = fresh["_old_v"].to_list(), fresh["scaffold_variants"].to_list()
    variants = [gather_variants(o, v) for o, v in zip(old_v, new_v, strict=True)]
    fresh = fresh.drop("_old", "_old_v").with_columns(
        pl.Series("scaffold_variants", variants, CAMPAIGN_SCHEMA["scaffold_variants"])
    )
    return pl.concat(
        [
            fresh.select(content_cols),
            prev.campaigns.select(content_cols).filter(~pl.col("campaign_id").is_in(fresh["campaign_id"].implode())),
        ]
    )


def merge_day(
    prev: Registry,
    new: Registry,
    day: dt.date,
    carried: dict[str, int] | None = None,
    own_accounts: dict[str, int] | None = None,
) -> Registry:
    """The registry after one more window of ``day``: ``new`` (the registry a run of the window alone wrote,
    replacing the day's daily rows with the window's) merged with ``prev`` (before the window): the day's
    rows summed over windows (prompts, and accounts as an upper bound: an account sending in two windows
    counts twice), the best score kept; campaigns of ``prev`` the window did not see kept; content (template,
    centroid, shingles) from ``new`` where it has them. ``carried``: per campaign, the carried exemplars its
    families in the window held — an earlier window counted them, so the window's prompts are its families'
    sizes less those. ``own_accounts``: per campaign, the distinct accounts of the window's own prompts in
    its families (the families' account counts include the exemplars' senders); a campaign it leaves out
    counts 0."""

    def per_campaign(rows: pl.DataFrame) -> pl.DataFrame:
        return rows.group_by("campaign_id", "day").agg(
            pl.col("prompts").sum(), pl.col("accounts").sum(), pl.col("campaign_score").max()
        )

    window = per_campaign(new.daily.filter(pl.col("day") == day))
    if carried:
        held = pl.DataFrame({"campaign_id": list(carried), "_held": list(carried.values())})
        window = (
            window.join(held.cast({"campaign_id": pl.String, "_held": pl.Int64}), on="campaign_id", how="left")
            .with_columns((pl.col("prompts").cast(pl.Int64) - pl.col("_held").fill_null(0)).clip(lower_bound=0))
            .drop("_held")
        )
    if own_accounts is not None:
        accts = pl.DataFrame(
            {"campaign_id": list(own_accounts), "_acc": list(own_accounts.values())},
            schema={"campaign_id": pl.String, "_acc": pl.Int64},
        )
        window = (
            window.join(accts, on="campaign_id", how="left")
            .with_columns(pl.col("_acc").fill_null(0).alias("accounts"))
            .drop("_acc")
        )
    today = per_campaign(
        pl.concat([prev.daily.filter(pl.col("day") == day), window.select(list(DAILY_SCHEMA)).cast(DAILY_SCHEMA)])
    )
    daily = pl.concat(
        [prev.daily.filter(pl.col("day") != day), today.select(list(DAILY_SCHEMA)).cast(DAILY_SCHEMA)]
    ).sort(["day", "campaign_id"])
    stats = campaign_stats(daily)
    content = _content(prev, new)
    campaigns = content.join(stats, on="campaign_id", how="inner").select(list(CAMPAIGN_SCHEMA)).sort("campaign_id")
    return Registry(campaigns=campaigns, daily=daily)


# what a restart may change: options that change no window's output (the engine: local and Ray give the same
# outputs), options a stream does not read (the history index, peer matching), and how the logs are read (the
# input digest already says the rows are the same)
_FREE_OPTIONS = ("quiet", "device", "embed.batch_size", "embed.cache_dir", "registry.peer_min_cluster_share")
_FREE_SECTIONS = ("engine", "history", "ingest")


def _options(cfg: RunConfig, per_campaign: int) -> dict[str, Any]:
    """The options a stream's windows depend on, flat (``section.key``), and the exemplars carried per campaign
    and the package version (its defaults); a model given as a folder by its resolved path."""
    from .. import __version__

    flat: dict[str, Any] = {"carry": per_campaign, "version": __version__}
    for key, value in cfg.to_dict().items():
        if key in _FREE_OPTIONS or key in _FREE_SECTIONS:
            continue
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if f"{key}.{k}" not in _FREE_OPTIONS})
        else:
            flat[key] = value
    model = Path(str(flat.get("embed.model", "")))
    if model.is_dir():
        flat["embed.model"] = str(model.resolve())
    return json.loads(json.dumps(flat, default=str))  # as stream.json holds them (tuples as lists)


def _load_state(out: Path, every: dt.timedelta, registry_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    path = out / STATE
    reg = str(registry_dir.resolve())
    if not path.is_file():
        return {
            "every_s": int(every.total_seconds()),
            "registry": reg,
            "options": options,
            "windows": [],
        }
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path} cannot be read ({err}); remove it to start the day again") from err
    # a stream's input may grow (a day's part files as they arrive): its done windows' rows are checked one by
    # one (:func:`done_rows`), not the whole input (a stream begun by another version, whose windows recorded
    # no digests, is refused below with its options)
    if state.get("every_s") != int(every.total_seconds()):
        raise InputError(
            f"{path} belongs to another stream (windows of {state.get('every_s')} s); use another --out or remove it"
        )
    if state.get("registry", reg) != reg:
        raise InputError(
            f"{path} is a stream carried in the registry {state['registry']}, not --registry {registry_dir}: a "
            "restart goes on with the registry it started with"
        )
    state.setdefault("registry", reg)
    if "options" not in state and state["windows"]:
        raise InputError(
            f"{path}: the stream was started by a version before 0.2.1, which recorded no options; its windows "
            "done ran that version's defaults and would disagree with the rest: finish it with that version, "
            "or use another --out"
        )
    before = state.get("options", options)
    changed = sorted(k for k in set(before) | set(options) if before.get(k) != options.get(k))
    if changed and state["windows"]:
        shown = ", ".join(f"{k} {before.get(k)!r} -> {options.get(k)!r}" for k in changed[:6])
        raise InputError(
            f"{path}: the stream was started with other options ({shown}{', …' if len(changed) > 6 else ''}); "
            "its windows done would disagree with the rest: restart with the options it started with, or use "
            "another --out"
        )
    state["options"] = options
    return state


def _save_state(out: Path, state: dict[str, Any]) -> None:
    from ..io.artifacts import write_bytes_atomic

    write_bytes_atomic(out / STATE, (json.dumps(state, indent=1, default=str) + "\n").encode())


def _begin_window(out: Path, state: dict[str, Any], w: int, reg: Registry, tables: dict[str, pl.DataFrame]) -> None:
    """Keep the carried state before window ``w`` (registry, ``tables``) in ``out/before`` and mark ``w``
    pending in ``stream.json``, so a restart after a crash inside the window starts it again from that
    state (:func:`_recover`) instead of from a registry that may already count it."""
    from ..io.artifacts import write_file_atomic
    from ..store.registry import save_registry

    if state.get("pending") == w:  # a restart inside window w: out/before already holds the state before it
        return
    before = out / BEFORE
    save_registry(before / "registry", reg)
    for name in TABLES:
        if (table := tables.get(name)) is not None:
            write_file_atomic(before / name, table.write_parquet)
        elif (before / name).exists():
            (before / name).unlink()
    state["pending"] = w
    _save_state(out, state)


def _recover(
    out: Path, state: dict[str, Any], registry_dir: Path, cfg: RunConfig
) -> tuple[Registry, dict[str, pl.DataFrame]]:
    """The carried state to go on with, the registry read and checked against the model: the state after the
    last window done, or, when a window was in progress (``stream.json`` "pending"), the state before it
    (``out/before``) with the registry directory put back to it (a window stopped after writing the
    registry would otherwise count twice in its daily rows).

    Raises:
        InputError: a damaged registry; a pending window whose kept state is missing or damaged.
    """
    from ..api import load_checked_registry
    from ..store.registry import save_registry

    def read(d: Path) -> dict[str, pl.DataFrame]:
        return {name: pl.read_parquet(d / name) for name in TABLES if (d / name).is_file()}

    if state.get("pending") is None:
        reg = load_checked_registry(registry_dir, cfg)
        return reg, read(out) if state["windows"] else {}
    before = out / BEFORE
    if not (before / "registry").is_dir():
        raise InputError(
            f"{out / STATE} marks window {state['pending']} in progress but {before / 'registry'} is missing, and "
            f"{registry_dir} may count that window already: put back the registry as it was before this day "
            f"(or the copy under {before}/.registry.*, if any) and stream the day again into an empty --out"
        )
    prev = load_checked_registry(before / "registry", cfg)  # the live directory may hold the stopped window's
    save_registry(registry_dir, prev)
    return prev, read(before)


def check_stream_out(out: Path, logs: Any, registry: Path) -> None:
    """Check a stream's output directory before any work: empty, absent or a stream's (``stream.json``); not
    inside the input, not overlapping the registry.

    Raises:
        OutputError: any of the above.
    """
    from ..api import check_out
    from ..errors import OutputError

    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not (out / STATE).is_file()):
        raise OutputError(f"--out {out} holds files that are not a stream's ({STATE}); use an empty directory")
    reg, o = registry.absolute(), out.absolute()
    if reg == o or o in reg.parents or reg in o.parents:
        raise OutputError(f"--out {out} and --registry {registry} overlap; keep them in separate directories")
    check_out(out / "w000", logs, registry, None)


def next_carry(
    carry: pl.DataFrame | None,
    win: pl.DataFrame,
    assignments: pl.DataFrame,
    per_campaign: int,
    root: dict[str, str] | None = None,
) -> pl.DataFrame:
    """The exemplars carried into the next window: per campaign, its ``per_campaign`` latest flagged prompts
    over the carried ones and this window's (``win``, the window's prompt rows; ``assignments`` its output),
    with the campaign each was flagged with (``_campaign``; a campaign merged into another counts as that one,
    ``root``: :func:`~clusterer.store.registry.aliases`)."""
    flagged = assignments.filter(pl.col("flagged") & pl.col("campaign_id").is_not_null()).select(
        "prompt_id", pl.col("campaign_id").alias(CAMPAIGN)
    )
    fresh = win.join(flagged, on="prompt_id", how="inner")
    both = (
        pl.concat([carry, fresh], how="diagonal_relaxed").select(fresh.columns)  # a column a later part added
        if carry is not None and carry.height
        else fresh
    )
    both = both.unique("prompt_id", keep="last", maintain_order=True)  # a window run again after a restart
    if root:
        both = both.with_columns(pl.col(CAMPAIGN).replace(root))
    return (
        both.sort(["timestamp", "prompt_id"], descending=True)
        .group_by(CAMPAIGN, maintain_order=True)
        .head(per_campaign)
        .sort([CAMPAIGN, "timestamp", "prompt_id"])
    )


def next_rhythm(
    rhythm: pl.DataFrame | None, assignments: pl.DataFrame, root: dict[str, str], window: int
) -> pl.DataFrame:
    """The day's rhythm after window ``window``: per window, day, campaign (merged campaigns counted as the
    one they were merged into, ``root``) and half hour of the day, its flagged prompts (``rhythm``, before the
    window; ``assignments``, the window's output). A window run again (a restart) replaces its rows."""
    fresh = (
        assignments.filter(pl.col("flagged") & pl.col("campaign_id").is_not_null())
        .select(
            pl.lit(window, pl.Int64).alias("window"),
            pl.col("timestamp").dt.date().alias("day"),
            pl.col("campaign_id"),
            ((pl.col("timestamp").dt.epoch("s") % 86_400) // 1_800).cast(pl.UInt8).alias("half_hour"),
        )
        .group_by("window", "day", "campaign_id", "half_hour")
        .agg(pl.len().cast(pl.UInt32).alias("prompts"))
    )
    if rhythm is not None and rhythm.height:
        fresh = pl.concat([rhythm.filter(pl.col("window") != window), fresh])
    return fresh.with_columns(pl.col("campaign_id").replace(root)).sort("window", "day", "campaign_id", "half_hour")


def day_rhythm(rhythm: pl.DataFrame | None, day: dt.date, root: dict[str, str]) -> dict[str, Any]:
    """Per campaign (merged ones counted as their root) its flagged prompts per half hour of ``day`` so far,
    float64 (48,)."""
    import numpy as np

    out: dict[str, Any] = {}
    if rhythm is None:
        return out
    for cid, half, n in rhythm.filter(pl.col("day") == day).select("campaign_id", "half_hour", "prompts").iter_rows():
        prof = out.setdefault(root.get(cid, cid), np.zeros(48, np.float64))
        prof[half] += n
    return out


def scheduled(rhythm: pl.DataFrame | None, day: dt.date, root: dict[str, str]) -> dict[str, int]:
    """The campaigns (merged ones counted as their root) flagged in at least two earlier windows of ``day``, each
    with the first window it was flagged in: two of them the family grouping joins on behaviour alone that
    started together are variants of one job, not a second job of the same accounts
    (:func:`~clusterer.run.stages.variant_pairs`)."""
    if rhythm is None or rhythm.height == 0:
        return {}
    per = (
        rhythm.filter(pl.col("day") == day)
        .with_columns(pl.col("campaign_id").replace(root))
        .group_by("campaign_id")
        .agg(pl.col("window").n_unique().alias("n"), pl.col("window").min().alias("first"))
        .filter(pl.col("n") >= 2)
    )
    return dict(zip(per["campaign_id"].to_list(), per["first"].to_list(), strict=True))


def _count_own_rows(rows: dict[str, Any], assignments: pl.DataFrame, n: int) -> None:
    """A window manifest's ``rows`` counts the window's own ``n`` prompts (``assignments``, the carried
    exemplars dropped): ``in``, ``out``, ``clustered``, ``noise``; the computation's counts (distinct texts
    and vectors, templated, truncated) stay those of the window and its exemplars."""
    from ..io.outputs import STATUS_CLUSTERED, STATUS_NOISE

    status = assignments["status"]
    rows.update(
        {
            "in": n,
            "out": assignments.height,
            "clustered": int((status == STATUS_CLUSTERED).sum()),
            "noise": int((status == STATUS_NOISE).sum()),
        }
    )


def _with_context(
    carry: pl.DataFrame | None, win: pl.DataFrame, open_rows: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, int, dict[int, str], pl.DataFrame]:
    """A window's rows to cluster (``_row`` numbered): the carried exemplars first (rows 0..n_carry-1, context
    for the clustering, not output; those the window holds itself left out) — the campaigns' (``carry``),
    then the open families' (``open_rows``, :mod:`~clusterer.campaigns.open`) — then the window's own; with
    the exemplars' count, the campaigns' exemplars' campaigns by row, and the open families' exemplars' rows
    (``_row``, ``_open``)."""
    parts = [t for t in (carry, open_rows) if t is not None and t.height]
    ctx = pl.concat(parts, how="diagonal_relaxed") if parts else None
    if ctx is not None:
        ctx = ctx.filter(~pl.col("prompt_id").is_in(win["prompt_id"].implode())).unique(
            "prompt_id", keep="first", maintain_order=True
        )
    no_open = pl.DataFrame(schema={"_row": pl.UInt32, KEY: pl.String})
    if ctx is None or ctx.height == 0:
        return win.with_row_index("_row"), 0, {}, no_open
    # a column a later part file added: null in the exemplars carried before it
    ctx = ctx.with_columns(pl.lit(None, win.schema[c]).alias(c) for c in win.columns if c not in ctx.columns)
    named = ctx[CAMPAIGN] if CAMPAIGN in ctx.columns else pl.Series([None] * ctx.height, dtype=pl.String)
    anchors = {r: c for r, c in enumerate(named.to_list()) if c is not None}
    opened = (
        ctx.with_row_index("_row").filter(pl.col(KEY).is_not_null()).select("_row", KEY)
        if KEY in ctx.columns
        else no_open
    )
    part = pl.concat([ctx.select(win.columns), win], how="vertical_relaxed").with_row_index("_row")
    return part, ctx.height, anchors, opened


def _one_window(
    prompts: Prompts,
    win: pl.DataFrame,
    tables: dict[str, pl.DataFrame],
    prev: Registry,
    target: Path,
    cfg: RunConfig,
    registry_dir: Path,
    day: dt.date,
    reporter: Any,
    engine: Any,
    earlier: Earlier | None = None,
) -> tuple[dict[str, Any], pl.DataFrame, Registry, tuple[pl.DataFrame, pl.DataFrame]]:
    """Cluster one window (``win``, its prompt rows) with the carried tables (``tables``: the campaigns'
    exemplars, the day's rhythm so far, :func:`next_rhythm`, and the open families), the registry before it
    (``prev``) and ``earlier`` (the day's earlier prompts of the window's accounts, read by the account-focus
    and one-shot terms: :mod:`~clusterer.campaigns.earlier`) on ``engine``; write its set, the registry merged
    with it, and return (its state entry, the window's assignments, the registry, the open families after it:
    :func:`~clusterer.campaigns.open.next_open`)."""
    from ..api import check_out
    from ..store.registry import save_registry
    from . import pipeline

    rhythm = tables.get(RHYTHM)
    part, n_carry, anchors, opened = _with_context(tables.get(CARRY), win, tables.get(OPEN))
    check_out(target, None, registry_dir, None)
    keep = frozenset(prev.daily.filter(pl.col("day") == day)["campaign_id"].to_list()) | frozenset(anchors.values())
    sub = dataclasses.replace(prompts, frame=part, texts=True)
    root = aliases(prev.campaigns)
    accounts = tables.get(OPEN_ACCOUNTS, pl.DataFrame(schema={KEY: pl.String, "account_id": pl.String}))
    open_families = OpenFamilies(opened, accounts) if opened.height else None
    carried = Carried(
        keep, anchors, day_rhythm(rhythm, day, root), root, earlier, scheduled(rhythm, day, root), day, open_families
    )
    result = pipeline.compute(
        sub, cfg, reporter=reporter, registry=prev, registry_dir=registry_dir, engine=engine, carried=carried
    )
    reg_new = result.registry_update
    result.registry_update = None
    # the set holds the window's own prompts; its clusters count the carried exemplars too (own_tables)
    context = result.assignments.head(n_carry)
    # the campaigns' exemplars its flagged families count as rows (an earlier window counted them); the open
    # families' exemplars are no family's rows (campaigns.open)
    own_context = context.with_row_index("_row").join(opened, on="_row", how="anti")
    held = own_context["campaign_id"].drop_nulls().value_counts(name="n")
    _own_set(result, context, win.height)
    result.manifest["stream"] = {
        "window": target.name,
        "carried_exemplars": n_carry - opened.height,
        "open_exemplars": opened.height,
        "merged_campaigns": dict(sorted(result.campaign_merges.items())),
        "merged_by_lines": sorted(result.campaign_line_merges),
    }
    result.write(target)
    carried_held = dict(zip(held["campaign_id"].to_list(), held["n"].to_list(), strict=True))
    own = result.assignments.filter(pl.col("campaign_id").is_not_null())
    own = own.group_by("campaign_id").agg(pl.col("account_id").n_unique().alias("n"))
    own_accounts = dict(zip(own["campaign_id"].to_list(), own["n"].to_list(), strict=True))  # its own senders
    merged = merge_day(prev, reg_new[1], day, carried_held, own_accounts) if reg_new is not None else prev
    merged = apply_merges(merged, result.campaign_merges)
    save_registry(registry_dir, merged, result.manifest["embedding"]["model_key"])
    entry = _window_entry(target, result, prev, merged, keep, registry_dir)
    held_open = opened.join(context.select(pl.col("cluster_id")).with_row_index("_row"), on="_row")
    after = next_open(
        result.clusters.select(
            "cluster_id", "campaign_score", "flagged", "cohesion", "template_coverage", "single_prompt_account_share"
        ),
        win.join(result.assignments.select("prompt_id", "cluster_id"), on="prompt_id"),
        held_open.select(KEY, "cluster_id"),
        tables.get(OPEN_ACCOUNTS),
        target.name,
        cfg.campaign,
    )
    return entry, result.assignments, merged, after


def _own_set(result: Result, context: pl.DataFrame, n: int) -> None:
    """``result`` (a window's run, its first ``context.height`` rows the carried exemplars) as the window's own
    ``n`` prompts make it: the exemplars sliced off the assignments and vectors, the other tables and the
    manifest's counts read with its own prompts (:func:`own_tables`; its flagged clusters those holding own
    prompts, as ``stream.json`` counts them)."""
    result.assignments = result.assignments.slice(context.height)
    result.vector_of_row = result.vector_of_row[context.height :]
    result.clusters, result.accounts, result.operators = own_tables(
        result.clusters, result.accounts, result.assignments, context
    )
    _count_own_rows(result.manifest["rows"], result.assignments, n)
    own_flagged = result.clusters["flagged"].fill_null(False) & (result.clusters["size"] > result.clusters["exemplars"])
    result.manifest["campaigns"].update(
        flagged_clusters=int(own_flagged.sum()),  # a flagged cluster of carried exemplars alone is not the window's
        flagged_prompts=int(result.assignments["flagged"].sum()),
        flagged_accounts=int(result.accounts["flagged"].sum()),
        operator_groups=result.operators.height,
    )


def own_tables(
    clusters: pl.DataFrame, accounts: pl.DataFrame, own: pl.DataFrame, context: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A window's clusters, accounts and operators tables read with its own prompts (``own``: its assignments,
    the carried exemplars sliced off; ``context``: the exemplars' assignments). The window clustered and scored
    its families with the exemplars, so a cluster keeps their counts and says how many of its rows they are
    (``exemplars``: ``size`` less it is the cluster's prompts in the window's ``assignments.parquet``); the
    accounts and operators count the window's own prompts only: an account none of whose prompts is the
    window's is not listed, nor an operator group none of whose flagged prompts is (its accounts here name
    none), and an account's prompts, first and last seen and flags are the window's, so the accounts' prompts
    over the windows add up to the day's (operator groups are numbered per window)."""
    from ..campaigns.decisions import operator_table
    from ..io.outputs import accounts_table, operators_table

    ex = context.filter(pl.col("cluster_id") >= 0).group_by("cluster_id").agg(pl.len().cast(pl.UInt32).alias("_ex"))
    clusters = (
        clusters.join(ex, on="cluster_id", how="left", maintain_order="left")
        .with_columns(pl.col("_ex").fill_null(0).alias("exemplars"))
        .select(clusters.columns)
    )
    fam = clusters.select("cluster_id", pl.col("flagged").alias("_in"))
    rows = own.join(fam, on="cluster_id", how="left").with_columns(pl.col("_in").fill_null(False))
    run_id, day = (own["run_id"][0], own["day"][0]) if own.height else (None, None)
    per = rows.select("account_id", pl.col("flagged").alias("flagged_prompt"), "campaign_id", "timestamp")
    # a group is its accounts' flagged prompts: one whose flagged prompts here were all exemplars is not the
    # window's, and its accounts here belong to no group listed (as in a batch run, every group an account
    # names has its row)
    ops = operator_table(per, accounts.select("account_id", "operator_group")).filter(pl.col("flagged_prompts") > 0)
    listed = pl.col("operator_group").is_in(ops["operator_group"].implode())
    decided = (
        rows.group_by("account_id")
        .agg(
            pl.col("flagged").any(),
            pl.col("_in").mean().alias("flagged_share"),
            pl.col("campaign_id").drop_nulls().unique().sort().alias("campaigns"),
        )
        .join(accounts.select("account_id", "operator_group"), on="account_id", how="left")
        .with_columns(pl.when(listed).then(pl.col("operator_group")).otherwise(-1).alias("operator_group"))
    )
    acc = accounts_table(rows.select("account_id", "timestamp", "cluster_id"), decided, run_id=run_id, day=day)
    ops = operators_table(ops, run_id=run_id, day=day)
    return clusters, acc, ops


def _window_entry(
    target: Path, result: Result, prev: Registry, merged: Registry, keep: frozenset[str], registry_dir: Path
) -> dict[str, Any]:
    """A done window's entry in ``stream.json`` (``result``: its run, the carried exemplars sliced off): its
    flagged clusters and prompts, its campaigns (new ones, those of earlier windows it kept, those merged in
    it), the exemplars it held, the registry after it (``merged``; ``prev`` before it) and the peak RSS. A
    flagged cluster of carried exemplars alone holds none of the window's prompts: it is not the window's."""
    assignments, m = result.assignments, result.manifest
    c = result.clusters.filter(pl.col("flagged").fill_null(False) & (pl.col("size") > pl.col("exemplars")))
    ids = set(c["campaign_id"].drop_nulls().to_list())
    was_merged = prev.campaigns.filter(pl.col("merged_into").is_not_null())["campaign_id"].implode()
    return {
        "dir": target.name,
        "rows": assignments.height,
        "flagged_clusters": c.height,
        "flagged_prompts": int(assignments["flagged"].sum()),
        "campaigns": sorted(ids),
        "new_campaigns": sorted(ids - set(prev.campaigns["campaign_id"].to_list())),
        "kept_campaigns": sorted(ids & keep),
        "merged_campaigns": dict(
            merged.campaigns.filter(pl.col("merged_into").is_not_null() & ~pl.col("campaign_id").is_in(was_merged))
            .select("campaign_id", "merged_into")
            .iter_rows()
        ),
        "registry_bytes": sum(p.stat().st_size for p in registry_dir.iterdir() if p.is_file()),
        "registry_campaigns": merged.campaigns.height,
        "registry_mem_bytes": int(merged.campaigns.estimated_size() + merged.daily.estimated_size()),
        "carried_exemplars": m["stream"]["carried_exemplars"],
        "open_exemplars": m["stream"]["open_exemplars"],
        "peak_rss_mb": m.get("peak_rss_mb"),
    }


def day_so_far(
    frame: pl.DataFrame,
    w: int,
    sec: int,
    win: pl.DataFrame,
    held: pl.Series | None,
    cfg: RunConfig,
    opened: pl.Series | None = None,
    texts: Callable[[NDArray[np.int64]], pl.Series] | None = None,
) -> Earlier | None:
    """The earlier prompts today of window ``w``'s accounts (``frame``: the day's rows with ``_window``;
    ``win``: the window's rows), the carried exemplars left out (``held``, their prompt IDs: the window holds
    them already): the latest
    ``EARLIER_PER_ACCOUNT`` of each with their normalised texts, and each account's count
    (:class:`~clusterer.campaigns.earlier.Earlier`). Only those rows' texts are read, by ``texts`` (row
    indices of ``frame`` → texts; ``frame["text"]`` when None); None in a day's first window."""
    from ..campaigns.earlier import earlier_prompts
    from ..text.normalise import normalise

    day_start = (w * sec) // 86_400 * 86_400  # the window's day, in seconds since 1970
    cond = (pl.col("_window") < w) & (pl.col("_window") * sec >= day_start)
    cond = cond & pl.col("account_id").is_in(win["account_id"].unique().implode())
    if held is not None and held.len():
        cond = cond & ~pl.col("prompt_id").is_in(held.implode())
    # an open family's exemplar (``opened``, its prompt ID) stays: the decisions read it as an earlier prompt
    # of its account, not as a row of the family; the family grouping, which reads it as a row, leaves it out
    is_held = pl.col("prompt_id").is_in(opened.implode()) if opened is not None else pl.lit(False)
    rows = frame.lazy().with_row_index("_i").filter(cond)
    rows = rows.select("_i", "account_id", "timestamp", is_held.alias("held")).collect()
    if rows.height == 0:
        return None
    return earlier_prompts(
        rows.cast({"_i": pl.Int64}),
        EARLIER_PER_ACCOUNT,
        texts if texts is not None else frame["text"].gather,
        lambda t: normalise(t, cfg.normalise).text,
    )


def window_columns(rows: pl.DataFrame) -> list[str]:
    """The columns a window's rows (of :attr:`DayTexts.frame`) carry values in (a later part file may add an
    optional column, null in the rows read before: that changes none of them); ``text`` for the texts' keys."""
    return [
        "text" if c == TEXT_KEY else c
        for c in rows.columns
        if (c == TEXT_KEY or not c.startswith("_")) and rows[c].null_count() < rows.height
    ]


def window_digest(rows: pl.DataFrame, columns: list[str]) -> str:
    """The digest of a window's rows (of :attr:`DayTexts.frame`) in ``columns`` whatever their order in the
    logs (a day's part files are read again as more arrive): :func:`~clusterer.io.ingest.content_digest` of
    the rows sorted by prompt ID, a text by its key."""
    cols = [pl.col(TEXT_KEY).alias("text") if c == "text" else pl.col(c) for c in columns]
    return content_digest(rows.select(cols).sort("prompt_id"))


class DayTexts:
    """The texts of the day's rows as a stream holds them: a day read from log files without its texts
    (:func:`~clusterer.io.ingest.read_logs`), each read back from its file when a window needs it and checked
    against its key (:func:`~clusterer.io.ingest.fetch_texts`); a table given in memory keeps its texts,
    gathered from it. ``frame``: the day's rows with the texts' keys in place of the texts."""

    def __init__(self, prompts: Prompts, cfg: RunConfig) -> None:
        self.prompts, self.cfg = prompts, cfg.ingest
        frame = prompts.frame
        self.held = frame["text"] if prompts.texts else None
        if self.held is not None:
            frame = frame.select(text_key(self.held) if c == "text" else pl.col(c) for c in frame.columns)
        self.frame = frame

    def of(self, rows: pl.DataFrame) -> pl.Series:
        """The texts of ``rows`` (rows of ``frame``), in their order.

        Raises:
            LogsChanged: a file that no longer holds them (read back from the files only).
        """
        if self.held is not None:
            return self.held.gather(rows["_row"]).alias("text")
        return fetch_texts(self.prompts, rows, self.cfg)

    def window(self, rows: pl.DataFrame, text: pl.Series | None = None) -> pl.DataFrame:
        """``rows`` (a window's, of ``frame``) with their texts (``text``, read here when None) in place of the
        keys, the day's own columns (``_window``, ``_row``, the texts' places) dropped: the rows a window
        clusters."""
        text = self.of(rows) if text is None else text
        cols = [text if c == TEXT_KEY else pl.col(c) for c in rows.columns if c not in ("_window", "_row", *TEXT_AT)]
        return rows.select(cols)


def done_rows(frame: pl.DataFrame, out: Path, state: dict[str, Any], numbered: bool = False) -> pl.Series:
    """Which rows of ``frame`` (the logs as read now, with ``_window``) the windows done hold, one bool per
    row. A done window's rows are those whose prompt IDs its ``assignments.parquet`` holds; they must all be
    in the logs with the content it clustered (its recorded digest). A row in a done window's time that no
    done window holds arrived after its window was done (late). ``numbered``: the prompt IDs are row numbers
    (``--new-prompt-ids``), said in the error.

    Raises:
        InputError: a done window whose rows went missing from the logs or changed, or whose output set lost
            its assignments.
    """
    windows = state["windows"]
    if not windows:
        return pl.Series("done", [False] * frame.height, pl.Boolean)
    parts = []
    for i, w in enumerate(windows):
        try:
            ids = pl.read_parquet(out / w["dir"] / "assignments.parquet", columns=["prompt_id"])
        except (OSError, pl.exceptions.PolarsError) as err:
            raise InputError(
                f"stream: window {w['dir']} is done but its assignments cannot be read ({err}); its rows would be "
                "in no output: stream the day again into a new --out and --registry"
            ) from err
        parts.append(ids.with_columns(pl.lit(i, pl.Int32).alias("_done")))
    held = pl.concat(parts)
    which = frame.select("prompt_id").join(held, on="prompt_id", how="left", maintain_order="left")["_done"]
    found = frame.with_columns(which).filter(pl.col("_done").is_not_null()).partition_by("_done", as_dict=True)
    for i, w in enumerate(windows):
        n = int((held["_done"] == i).sum())
        rows = found.get((i,))
        missing = [c for c in w["digest_columns"] if (TEXT_KEY if c == "text" else c) not in frame.columns]
        if rows is not None and rows.height == n and not missing:
            if window_digest(rows, w["digest_columns"]) == w["digest"]:
                continue
        ids = held.filter(pl.col("_done") == i)["prompt_id"]
        gone = ids.filter(~ids.is_in(frame["prompt_id"].implode()))
        if gone.len():
            eg = ", ".join(map(repr, gone.head(3).to_list()))
            what = f"{gone.len():,} of them are no longer in the logs (e.g. prompt IDs {eg})"
        elif missing:
            what = f"the logs no longer have its column(s) {', '.join(missing)}"
        else:
            what = "the logs now hold them with other content"
        hint = (
            " (the prompt IDs are row numbers, --new-prompt-ids: a part file that sorts before those read "
            "shifts them; give the logs their own prompt IDs to stream a growing day)"
            if numbered
            else ""
        )
        raise InputError(
            f"stream: window {w['dir']} was clustered with {n:,} rows and {what}{hint}: its outputs and the "
            "registry count those rows as they were. Stream the logs it began with (more part files may be "
            "added), or stream into a new --out and --registry"
        )
    return which.is_not_null()


def _check_done_sets(out: Path, state: dict[str, Any]) -> None:
    """Refuse a stream state whose done window lost its output set.

    Raises:
        InputError: a window ``stream.json`` lists as done has no ``manifest.json``.
    """
    # a window done is one output set: one gone since would leave its rows in no output, and it cannot be
    # run again alone (the registry and the carried state already hold it)
    gone = [w["dir"] for w in state["windows"] if not (out / w["dir"] / "manifest.json").is_file()]
    if gone:
        raise InputError(
            f"stream: {len(gone)} window(s) that {out / STATE} lists as done have no output set "
            f"({', '.join(gone[:3])}{', …' if len(gone) > 3 else ''}); their rows would be in no output and a "
            "window cannot be run again alone (the registry counts it): run the stream again into a new --out "
            "and --registry"
        )


def _next_tables(
    out: Path,
    tables: dict[str, pl.DataFrame],
    w: int,
    win: pl.DataFrame,
    assignments: pl.DataFrame,
    root: dict[str, str],
    per_campaign: int,
    opened: tuple[pl.DataFrame, pl.DataFrame],
) -> dict[str, pl.DataFrame]:
    """The carried tables after window ``w`` (``win``, its rows; ``assignments``, its output; ``opened``, its
    open families: :func:`~clusterer.campaigns.open.next_open`), written to ``out``."""
    from ..io.artifacts import write_file_atomic

    after = {
        CARRY: next_carry(tables.get(CARRY), win, assignments, per_campaign, root),
        RHYTHM: next_rhythm(tables.get(RHYTHM), assignments, root, w),
        OPEN: opened[0],
        OPEN_ACCOUNTS: opened[1],
    }
    for name, table in after.items():
        write_file_atomic(out / name, table.write_parquet)
    return after


def _table_bytes(out: Path) -> dict[str, int]:
    """The carried tables' bytes on disk: the campaigns' exemplars, the rhythm, the open families."""
    size = {name: (out / name).stat().st_size if (out / name).is_file() else 0 for name in TABLES}
    return {
        "carry_bytes": size[CARRY],
        "rhythm_bytes": size[RHYTHM],
        "open_bytes": size[OPEN] + size[OPEN_ACCOUNTS],
    }


def _open_today(tables: dict[str, pl.DataFrame], name: str) -> dict[str, pl.DataFrame]:
    """The carried tables for the window ``name`` (its output set, ``<day>-wNNN``): open families end with
    their day (the spread they lend counts the accounts of the day so far)."""
    day = name.split("-w")[0]
    return {
        k: t.filter(pl.col(KEY).str.starts_with(f"{day}-w")) if k in (OPEN, OPEN_ACCOUNTS) else t
        for k, t in tables.items()
    }


def _window_dir(out: Path, w: int, sec: int) -> Path:
    """The output set of window ``w`` (windows of ``sec`` seconds since 1970): ``<day>-wNNN``, the window of
    the day zero-padded to as many digits as the day's last window needs (at least three), so names sort in
    time order."""
    start = dt.datetime.fromtimestamp(w * sec, dt.timezone.utc)
    width = max(3, len(str(-(-86_400 // sec) - 1)))
    return out / f"{start:%Y%m%d}-w{(w * sec) % 86_400 // sec:0{width}d}"


@dataclasses.dataclass(frozen=True, slots=True)
class Live:
    """A day still arriving (``clusterer watch``): a window is clustered once it is closed — rows of a later
    window are in the logs, or ``settle`` has passed since its end by the clock (``now``, UTC)."""

    now: dt.datetime
    settle: dt.timedelta
    changed: list[str] = dataclasses.field(default_factory=list)  # files found changed while read back

    def closed(self, w: int, sec: int, newest: int) -> bool:
        end = dt.datetime.fromtimestamp((w + 1) * sec, dt.timezone.utc)
        return w < newest or end + self.settle <= self.now


def _windows_to_run(
    frame: pl.DataFrame, out: Path, state: dict[str, Any], sec: int, live: Live | None, numbered: bool = False
) -> tuple[pl.DataFrame, list[int], int]:
    """The windows to cluster now, in order, after those done (``frame``: the logs with ``_window``): all of
    them, or with ``live`` the closed ones. Rows that arrived after their window was done (late: in the time
    of a done window, held by none) go with the first window to run, the frame returned saying so in
    ``_window``; their count is returned too.

    Raises:
        InputError: a done window's rows changed (:func:`done_rows`); late rows and no window to take them in
            a stream of a finished day.
    """
    done = done_rows(frame, out, state, numbered)
    last = max((w["index"] for w in state["windows"]), default=None)
    late = frame.filter(~done & (pl.col("_window") <= last)) if last is not None else frame.head(0)
    fresh = frame.filter(~done & (pl.col("_window") > last)) if last is not None else frame
    todo = sorted(fresh["_window"].unique().to_list())
    if live is not None:
        newest = max(todo, default=-1)
        todo = [w for w in todo if live.closed(w, sec, newest)]
    if late.height and not todo:
        if live is not None:
            log.info("stream: %d late rows wait for the next window to close", late.height)
            return frame, [], late.height
        raise InputError(
            f"stream: {late.height} rows arrived after their window was done (e.g. prompt IDs "
            f"{', '.join(map(repr, late['prompt_id'].head(3).to_list()))}) and no later window is in the logs "
            "to cluster them with: they go with the next window once its logs arrive (or run them with "
            "`clusterer run`)"
        )
    if late.height:
        frame = frame.with_columns(
            pl.when(~done & (pl.col("_window") <= last)).then(todo[0]).otherwise(pl.col("_window")).alias("_window")
        )
    return frame, todo, late.height


def _window_texts(
    texts: DayTexts,
    frame: pl.DataFrame,
    rows: pl.DataFrame,
    w: int,
    sec: int,
    tables: dict[str, pl.DataFrame],
    cfg: RunConfig,
    live: Live | None,
) -> tuple[pl.DataFrame, Earlier | None] | None:
    """Window ``w``'s rows with their texts and its accounts' day so far (:func:`day_so_far`), the texts of
    both read back in one pass over the files before the window begins, so a file changed since leaves the
    state as it was: None in a watch (``live``, which notes it), which reads the logs again at its next poll.

    Raises:
        LogsChanged: such a file, in a stream of a finished day.
    """
    carry_ids, open_ids = (tables[k]["prompt_id"] if k in tables else None for k in (CARRY, OPEN))
    own: list[pl.Series] = []

    def with_own(idx: NDArray[np.int64]) -> pl.Series:  # the earlier prompts' texts, read with the window's
        both = texts.of(pl.concat([rows, frame[idx]]))
        own.append(both.head(rows.height))
        return both.slice(rows.height)

    try:
        earlier = day_so_far(frame, w, sec, rows, carry_ids, cfg, open_ids, with_own)
        return texts.window(rows, own[0] if own else None), earlier
    except LogsChanged as err:
        if live is None:
            raise
        live.changed.append(str(err))
        log.warning("%s; reading the logs again at the next poll", err)
        return None


def stream(
    prompts: Prompts,
    out: Path,
    cfg: RunConfig,
    every: dt.timedelta,
    registry_dir: Path,
    reporter: Any = None,
    per_campaign: int = 32,
    live: Live | None = None,
) -> dict[str, Any]:
    """Cluster ``prompts`` window by window into ``out/<day>-wNNN`` (one output set each, NNN the window of
    the day) with the registry and the carried exemplars as state (module docstring); resumes after the
    windows ``out/stream.json`` lists. Returns the state (per window: index, start, rows, flagged clusters
    and prompts, new and kept campaigns, seconds, carried exemplars, the registry's bytes on disk and in
    memory, the carry's bytes, the process's peak RSS so far).

    Raises:
        InputError: rows without timestamps, a state of another stream; what a run raises.
    """
    from ..accel.backend import Device, resolve
    from ..progress import Reporter
    from .engines import make_engine

    reporter = reporter or Reporter(quiet=True)
    texts = DayTexts(prompts, cfg)
    frame = texts.frame
    if frame["timestamp"].null_count():
        null = frame.filter(pl.col("timestamp").is_null())
        raise InputError(
            f"stream: {null.height} rows have no timestamp (e.g. prompt IDs "
            f"{', '.join(map(repr, null['prompt_id'].head(3).to_list()))}) and fall in no window; "
            "`--null-timestamps skip` keeps such rows only in `run`: fill or drop them before streaming"
        )
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(out, every, registry_dir, _options(cfg, per_campaign))
    _check_done_sets(out, state)
    frame = frame.with_columns(window_index(frame["timestamp"], every))
    sec = int(every.total_seconds())
    # a stop inside a window: the registry put back to the state before it, even with nothing to run now
    recovered = _recover(out, state, registry_dir, cfg) if state.get("pending") is not None else None
    frame, todo, late = _windows_to_run(frame, out, state, sec, live, prompts.generated_prompt_ids)
    if not todo:
        if not (out / STATE).is_file():  # an empty log: a stream of no windows, said so
            _save_state(out, state)
        return state
    reg, tables = recovered or _recover(out, state, registry_dir, cfg)  # each window returns the next
    engine = make_engine(cfg, resolve(Device(cfg.device)))  # one for the day, not one per window
    try:
        for w in todo:
            start = dt.datetime.fromtimestamp(w * sec, dt.timezone.utc)
            rows = frame.filter(pl.col("_window") == w).sort("prompt_id")  # whatever order the rows came in
            target = _window_dir(out, w, sec)
            t0 = time.perf_counter()
            tables = _open_today(tables, target.name)
            got = _window_texts(texts, frame, rows, w, sec, tables, cfg, live)
            if got is None:
                break
            win, earlier = got
            _begin_window(out, state, w, reg, tables)
            entry, assignments, reg, opened = _one_window(
                prompts, win, tables, reg, target, cfg, registry_dir, start.date(), reporter, engine, earlier
            )
            del earlier
            tables = _next_tables(out, tables, w, win, assignments, aliases(reg.campaigns), per_campaign, opened)
            entry.update(
                index=w,
                start=start.isoformat(),
                digest=window_digest(rows, cols := window_columns(rows)),
                digest_columns=cols,
                late_rows=late if w == todo[0] else 0,
                seconds=round(time.perf_counter() - t0, 2),
                **_table_bytes(out),
            )
            state["windows"].append(entry)
            state.pop("pending", None)
            _save_state(out, state)  # the window is done: its state is now the one carried
    finally:
        engine.close()
    return state
