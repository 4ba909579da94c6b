"""Rich tables that summarise a run for a person at a terminal."""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.console import Group
from rich.table import Table

TOP = 10


def summary_table(manifest: dict[str, Any], clusters: pl.DataFrame) -> Group:
    """Row accounting, stage timings and the top clusters by distinct accounts."""
    rows = manifest["rows"]
    head = Table(title="clusterer run", show_header=False, box=None)
    head.add_row("rows in / out", f"{rows['in']:,} / {rows['out']:,}")
    head.add_row(
        "clustered / noise / empty",
        f"{rows['clustered']:,} / {rows['noise']:,} / {rows['not_clustered']['empty_text']:,}",
    )
    head.add_row("clusters / accounts", f"{manifest['clusters']:,} / {manifest['accounts']:,}")
    head.add_row("device", f"{manifest['device']['backend']} ({manifest['device']['name']})")
    head.add_row("stages (s)", ", ".join(f"{k} {v['seconds']:.1f}" for k, v in manifest["stages"].items()))
    head.add_row("peak RSS", f"{manifest['peak_rss_mb']:.0f} MiB")
    top = Table(title=f"top {TOP} clusters by distinct accounts")
    for col in ("cluster", "prompts", "accounts", "top acct share", "cohesion", "exemplar"):
        top.add_column(
            col, overflow="fold" if col == "exemplar" else "ellipsis", max_width=70 if col == "exemplar" else None
        )
    for r in clusters.head(TOP).iter_rows(named=True):
        top.add_row(
            str(r["cluster_id"]),
            f"{r['size']:,}",
            f"{r['n_accounts']:,}",
            f"{r['top_account_share']:.2f}",
            f"{r['cohesion']:.2f}",
            " ".join((r["exemplar_text"] or "").split())[:140],
        )
    return Group(head, top)
