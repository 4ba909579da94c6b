"""Rich tables that summarise a run for a person at a terminal (end of ``run`` and ``clusterer show``)."""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.console import Group
from rich.table import Table

TOP = 10


def _span(first: Any, last: Any) -> str:
    if first is None or last is None:
        return ""
    return f"{first:%H:%M}–{last:%H:%M} ({(last - first).total_seconds() / 3600:.1f} h)"


def campaigns_table(clusters: pl.DataFrame, top: int = TOP) -> Table:
    """Top template families by campaign score: score, prompts, accounts, tags, template, time span."""
    t = Table(title=f"top {top} template families by campaign score")
    for col in ("campaign", "score", "flag", "prompts", "accounts", "tags", "template", "span"):
        t.add_column(
            col, overflow="fold" if col == "template" else "ellipsis", max_width=60 if col == "template" else None
        )
    for r in clusters.head(top).iter_rows(named=True):
        t.add_row(
            r.get("campaign_id") or f"cluster {r['cluster_id']}",
            f"{(r.get('campaign_score') or 0.0):.2f}",
            "yes" if r.get("flagged") else "",
            f"{r['size']:,}",
            f"{r['n_accounts']:,}",
            ", ".join(r.get("tags") or []),
            " ".join((r.get("template") or r.get("exemplar_text") or "").split())[:160],
            _span(r.get("first_seen"), r.get("last_seen")),
        )
    return t


def summary_table(manifest: dict[str, Any], clusters: pl.DataFrame) -> Group:
    """Row accounting, flags, stage timings and the top template families."""
    rows = manifest["rows"]
    head = Table(title="clusterer run", show_header=False, box=None)
    head.add_row("rows in / out", f"{rows['in']:,} / {rows['out']:,}")
    head.add_row(
        "clustered / noise / empty",
        f"{rows['clustered']:,} / {rows['noise']:,} / {rows['not_clustered']['empty_text']:,}",
    )
    head.add_row("clusters / accounts", f"{manifest['clusters']:,} / {manifest['accounts']:,}")
    camp = manifest.get("campaigns")
    if camp:
        head.add_row(
            "flagged families / prompts / accounts / operator groups",
            f"{camp['flagged_clusters']:,} / {camp['flagged_prompts']:,} / {camp['flagged_accounts']:,} / "
            f"{camp['operator_groups']:,}",
        )
        if camp["signals_missing"]:
            head.add_row("signals missing", ", ".join(camp["signals_missing"]))
    head.add_row("device", f"{manifest['device']['backend']} ({manifest['device']['name']})")
    head.add_row("stages (s)", ", ".join(f"{k} {v['seconds']:.1f}" for k, v in manifest["stages"].items()))
    head.add_row("peak RSS", f"{manifest['peak_rss_mb']:.0f} MiB")
    return Group(head, campaigns_table(clusters))
