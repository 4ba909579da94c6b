"""A self-contained HTML report of a finished run (``clusterer report RUN_DIR``, ``clusterer run --report``).

One file, no network: an overview of the day (counts, flagged campaigns, the largest unflagged
families, a 2-D map), a page per campaign (template with slots, score terms, prompts per hour against
the day, accounts, organisations and account ages, operator groups, history, exemplars) and the run's
manifest. ``data`` gathers, ``projection`` lays out the map, ``charts`` draws SVG, ``page`` renders.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ... import __version__
from ...errors import OutputError
from ...io import artifacts
from ...io.artifacts import VECTORS
from . import charts
from .data import (
    MAX_FLAGGED_PAGES,
    Day,
    Family,
    Run,
    day_profile,
    family_accounts,
    gather_families,
    load_run,
    operator_group_counts,
    select_families,
)
from .page import render, span
from .projection import MAP_POINTS, day_map

REPORT_FILE = artifacts.REPORT
TEMPLATE_PREVIEW = 160

__all__ = ["REPORT_FILE", "ReportResult", "build_report"]


@dataclass(frozen=True, slots=True)
class ReportResult:
    """Where the report went and what it holds."""

    path: Path
    bytes: int
    seconds: float
    flagged: int
    pages: int
    map_points: int


def _preview(info: dict[str, Any]) -> str:
    text = " ".join((info.get("template") or info.get("exemplar_text") or "").split())
    return text if len(text) <= TEMPLATE_PREVIEW else text[:TEMPLATE_PREVIEW] + " …"


def _table_rows(families: pl.DataFrame, groups: dict[int, int], pages: set[int]) -> list[dict[str, Any]]:
    rows = []
    for info in families.iter_rows(named=True):
        cid = int(info["cluster_id"])
        first, last = info.get("first_seen"), info.get("last_seen")
        rows.append(
            {
                "cluster_id": cid,
                "title": info.get("campaign_id") or f"cluster {cid}",
                "score": info.get("campaign_score"),
                "size": info.get("size"),
                "accounts": info.get("n_accounts"),
                "groups": groups.get(cid, 0),
                "tags": info.get("tags") or [],
                "span": span(first, last),
                "span_hours": (last - first).total_seconds() / 3600 if first is not None and last is not None else "",
                "template": _preview(info),
                "page": cid in pages,
            }
        )
    return rows


def _overview(run: Run, day: Day) -> dict[str, Any]:
    m = run.manifest
    rows = m.get("rows", {})
    camp = m.get("campaigns") or {}
    ts = run.assignments["timestamp"].drop_nulls()
    return {
        "rows_in": rows.get("in", run.assignments.height),
        "clustered": rows.get("clustered"),
        "noise": rows.get("noise"),
        "empty": (rows.get("not_clustered") or {}).get("empty_text"),
        "clusters": run.clusters.height,
        "accounts": run.accounts.height,
        "flagged_clusters": int(run.clusters["flagged"].fill_null(False).sum()) if run.clusters.height else 0,
        "flagged_prompts": int(run.assignments["flagged"].sum()),
        "flagged_accounts": int(run.accounts["flagged"].fill_null(False).sum()) if "flagged" in run.accounts else 0,
        "operator_groups": run.operators.height,
        "span": span(ts.min(), ts.max()) if ts.len() else "—",
        "signals_missing": ", ".join(camp.get("signals_missing") or []),
    }


def _manifest_facts(m: dict[str, Any]) -> list[tuple[str, Any]]:
    cfg = m.get("config") or {}
    dev = m.get("device") or {}
    rows = m.get("rows") or {}
    peer = m.get("fingerprints") or {}
    peer_fact = []
    if peer:  # `clusterer fingerprints match`
        who = ", ".join(str(f.get("provider")) for f in peer.get("files") or [])
        peer_fact = [("peer fingerprints", f"{peer.get('matched_clusters', 0):,} clusters match campaigns of {who}")]
    return peer_fact + [
        ("clusterer version", m.get("version", "—")),
        ("started (UTC)", str(m.get("started_at", "—"))[:19].replace("T", " ")),
        ("finished (UTC)", str(m.get("finished_at", "—"))[:19].replace("T", " ")),
        ("device", f"{dev.get('backend', '—')} ({dev.get('name', '—')})"),
        ("embedding model", (cfg.get("embed") or {}).get("model", "—")),
        ("seed", cfg.get("seed", "—")),
        ("distinct vectors", f"{rows.get('distinct_vectors', 0):,}"),
        ("peak RSS (MiB)", m.get("peak_rss_mb", "—")),
    ]


def _map(run: Run, flagged: pl.DataFrame, families: list[Family], points: int, seed: int) -> tuple[Any, str, int]:
    cluster_of_row = run.assignments["cluster_id"].to_numpy().astype(np.int64)
    flagged_ids = flagged["cluster_id"].to_numpy().astype(np.int64)
    if points == 0:
        return None, "The map was left out (--map-points 0).", 0
    if not (run.path / VECTORS).is_file():
        return None, f"This run saved no embedding vectors ({VECTORS}), so there is no map.", 0
    dm = day_map(run.path, cluster_of_row, flagged_ids, points, seed)
    if dm is None:
        return None, "No embedded prompt to map (or the saved vectors do not match this run's rows).", 0
    present = set(np.unique(dm.cluster).tolist())
    info = run.clusters.filter(pl.col("cluster_id").is_in(list(present)))
    tips, labels = {}, {}
    pages = {f.cluster_id for f in families}
    for r in info.iter_rows(named=True):
        cid = int(r["cluster_id"])
        name = r.get("campaign_id") or f"cluster {cid}"
        # families without a page get a short tooltip: a big day has thousands of them on the map
        preview = _preview(r)[: 70 if cid in pages else 40]
        tips[cid] = f"{name} · {r['size']:,} prompts · {preview}"
        if r.get("flagged"):
            labels[cid] = name
            tips[cid] = f"{name} · score {(r.get('campaign_score') or 0):.2f} · {r['size']:,} prompts · {preview}"
    anchors = {f.cluster_id: f"c{f.cluster_id}" for f in families}
    order = [c for c in flagged["cluster_id"].to_list() if c in present]
    svg = charts.day_map_svg(dm, tips, labels, order, anchors)
    note = (
        f"{len(dm.xy):,} points sampled from {dm.distinct:,} distinct (vector, family) pairs that stand for "
        f"{dm.rows:,} embedded prompts; each flagged campaign keeps a quota of points, the rest is weighted by "
        "how many prompts share a vector. Layout: t-SNE of the saved vectors (near points are similar "
        "prompts; distances between far-apart groups mean little). Hover a point for its family, click to "
        "open its page."
    )
    return svg, note, len(dm.xy)


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
    artifacts.write_bytes_atomic(path, data)


def build_report(
    run_dir: Path,
    out: Path | None = None,
    registry: Path | None = None,
    map_points: int = MAP_POINTS,
) -> ReportResult:
    """Write the HTML report of the run in ``run_dir`` to ``out`` (default ``run_dir/report.html``).

    ``registry``: a campaign registry (``run --registry``) whose first-seen / days-seen facts to show.

    Raises:
        InputError: ``run_dir`` is not a finished run or one of its files cannot be read.
        OutputError: the report cannot be written.
    """
    t0 = time.perf_counter()
    run = load_run(Path(run_dir))
    if out is None:
        out = run.path / REPORT_FILE
    else:  # never over one of the run's files or its input logs (the report reads both)
        from ...api import check_out_file

        keep = [(i["path"], "an input of the run") for i in run.manifest.get("inputs") or [] if i.get("path")]
        if Path(out).resolve() != (run.path / REPORT_FILE).resolve():  # its own place in the set is fine
            keep.append((run.path, f"the run's output set (a report there is {REPORT_FILE})"))
        out = check_out_file(out, keep=keep)
    day = day_profile(run)
    flagged, unflagged = select_families(run)
    paged = pl.concat([flagged.head(MAX_FLAGGED_PAGES), unflagged], how="vertical_relaxed")
    table_ids = flagged["cluster_id"].to_list() + unflagged["cluster_id"].to_list()
    per_account = family_accounts(run, table_ids)
    groups = operator_group_counts(per_account)
    families, note = gather_families(run, day, paged, registry, per_account=per_account)
    pages = {f.cluster_id for f in families}
    seed = int((run.manifest.get("config") or {}).get("seed") or 0)
    map_svg, map_note, n_points = _map(run, flagged, families, map_points, seed)
    ts = run.assignments["timestamp"].drop_nulls()
    day_label = str(ts.sort()[ts.len() // 2].date()) if ts.len() else "—"
    hour_word = "hour" if day.bin_hours == 1 else f"{day.bin_hours} hours"
    context = {
        "day_label": day_label,
        "hour_word": hour_word,
        "overview": _overview(run, day),
        "day_chart": charts.hour_chart(day.bin_labels, day.total, day.total, day.flagged, "prompts per hour"),
        "flagged_rows": _table_rows(flagged, groups, pages),
        "unflagged_rows": _table_rows(unflagged, groups, pages),
        "pages_capped": MAX_FLAGGED_PAGES if flagged.height > MAX_FLAGGED_PAGES else 0,
        "map_svg": map_svg,
        "map_note": map_note,
        "manifest_facts": _manifest_facts(run.manifest),
        "inputs": [
            {k: i.get(k) for k in ("path", "format", "bytes", "rows", "xxh3_64")}
            for i in run.manifest.get("inputs") or []
            if isinstance(i, dict)
        ],
        "stages": list((run.manifest.get("stages") or {}).items()),
        "manifest_json": json.dumps(run.manifest, indent=2, default=str),
        "built_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "run_dir": str(run.path),
        "families": families,
        "exemplar_note": (
            f"Only the exemplar stored in clusters.parquet is shown: {note}." if note is not None else ""
        ),
        "hours": lambda f: charts.hour_chart(day.bin_labels, f.hours, day.total, None, "prompts per hour"),
        "waterfall": lambda f: charts.waterfall(f.terms.contributions, f.terms.threshold_logit),
        "ages": lambda f: charts.bar_list(f.ages or [], "account age at first prompt"),
    }
    data = render(context).encode("utf-8")
    _write_atomic(out, data)
    return ReportResult(
        path=out,
        bytes=len(data),
        seconds=time.perf_counter() - t0,
        flagged=flagged.height,
        pages=len(families),
        map_points=n_points,
    )
