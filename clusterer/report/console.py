"""Rich tables that summarise a run for a person at a terminal (end of ``run`` and ``clusterer show``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from .html.data import Day, Family

TOP = 10


def _span(first: Any, last: Any) -> str:
    if first is None or last is None:
        return ""
    return f"{first:%H:%M}–{last:%H:%M} ({(last - first).total_seconds() / 3600:.1f} h)"


def campaigns_table(clusters: pl.DataFrame, top: int = TOP) -> Table:
    """Top template families by campaign score: full campaign ID (with time span and tags below it), score,
    prompts, accounts, template."""
    t = Table(
        title=f"top {top} template families by campaign score",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    shown = clusters.head(top)
    # campaign IDs are join keys: never cut them short
    id_width = max([len(i) for i in shown["campaign_id"].drop_nulls().to_list()] + [len("campaign")])
    # time span and tags go under the ID (each line ~20 characters): a full ID then fits 80 columns
    for col in ("campaign", "score", "flag", "prompts", "accounts", "template"):
        t.add_column(
            col,
            overflow="fold" if col in ("template", "campaign") else "ellipsis",
            max_width=60 if col == "template" else None,
            min_width=id_width if col == "campaign" else None,
        )
    for r in shown.iter_rows(named=True):
        name = Text(r.get("campaign_id") or f"cluster {r['cluster_id']}")
        when = _span(r.get("first_seen"), r.get("last_seen"))
        for extra in (when, *(r.get("tags") or [])):
            if extra:
                name.append("\n" + extra, style="dim")
        t.add_row(
            name,
            f"{(r.get('campaign_score') or 0.0):.2f}",
            "yes" if r.get("flagged") else "",
            f"{r['size']:,}",
            f"{r['n_accounts']:,}",
            " ".join((r.get("template") or r.get("exemplar_text") or "").split())[:160],
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


_SPARK = "▁▂▃▄▅▆▇█"


def _spark(counts: list[int]) -> str:
    top = max(counts, default=0)
    if top <= 0:
        return ""
    return "".join(" " if c == 0 else _SPARK[min(len(_SPARK) - 1, int(c * len(_SPARK) / (top + 1)))] for c in counts)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


def campaign_detail(fam: Family, day: Day) -> Group:
    """One family in full for ``clusterer show DIR --campaign ID``: IDs, template, score terms, timing,
    accounts, operator groups, organisations, account ages, history and the stored exemplar.

    Campaign and account IDs are printed whole (folded onto the next line if the terminal is narrower).
    """
    info = fam.info
    parts: list[Any] = []
    head = Text()
    head.append("campaign " if info.get("flagged") else "family ", style="bold")
    head.append(fam.title, style="bold red" if info.get("flagged") else "bold")
    head.append(
        f"  (cluster {fam.cluster_id}, {'flagged' if info.get('flagged') else 'not flagged'}, "
        f"score {_fmt(info.get('campaign_score'))})"
    )
    parts.append(head)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column(overflow="fold")
    facts.add_row("prompts / accounts", f"{info.get('size', 0):,} / {info.get('n_accounts', 0):,}")
    facts.add_row("operator groups", f"{fam.n_operator_groups:,}")
    facts.add_row("span (UTC)", _span(info.get("first_seen"), info.get("last_seen")) or "—")
    facts.add_row("tags", ", ".join(info.get("tags") or []) or "—")
    if day.total:
        facts.add_row("prompts per " + ("hour" if day.bin_hours == 1 else f"{day.bin_hours} h"), _spark(fam.hours))
        facts.add_row("the day", _spark(day.total))
    for k, v in fam.facts:
        facts.add_row(k, _fmt(v))
    parts.append(facts)
    parts.append(Text("template", style="bold"))
    parts.append(Text(info.get("template") or "—", overflow="fold"))
    terms = fam.terms
    if terms is not None and terms.contributions:
        t = Table(title="score terms (contribution to the campaign logit, largest first)", title_justify="left")
        t.add_column("term")
        t.add_column("contribution", justify="right")
        for name, v in terms.contributions:
            t.add_row(name, f"{v:+.2f}")
        verdict = ""
        if terms.threshold_logit is not None and terms.logit is not None:
            side = "over" if terms.logit >= terms.threshold_logit else "under"
            margin = abs(terms.logit - terms.threshold_logit)
            verdict = f" ({side} the threshold {terms.threshold_logit:+.2f} by {margin:.2f})"
        t.add_row(Text("logit", style="bold"), Text(f"{terms.logit:+.2f}{verdict}", style="bold"))
        parts.append(t)
    elif terms is not None:
        t = Table(title="features (this run wrote no per-term contributions)", title_justify="left")
        t.add_column("feature")
        t.add_column("value", justify="right")
        for name, v in terms.features:
            t.add_row(name, _fmt(v))
        parts.append(t)
    acc = Table(title="top accounts", title_justify="left")
    id_width = min(40, max([len(str(a["account_id"])) for a in fam.top_accounts] + [7]))
    for col in ("account", "prompts here", "all prompts", "first seen", "last seen", "operator group"):
        acc.add_column(
            col,
            overflow="fold",
            justify="right" if col in ("prompts here", "all prompts") else "left",
            min_width=id_width if col == "account" else None,
        )
    for a in fam.top_accounts:
        group = a.get("operator_group")
        acc.add_row(
            a["account_id"],
            _fmt(a.get("family_prompts")),
            _fmt(a.get("prompts")),
            _fmt(a.get("family_first_seen")),
            _fmt(a.get("family_last_seen")),
            str(group) if group is not None and group >= 0 else "—",
        )
    parts.append(acc)
    if fam.operator_groups:
        ops = Table(title="operator groups", title_justify="left")
        for col in ("group", "accounts here", "prompts here", "group accounts", "campaigns"):
            ops.add_column(col, overflow="fold")
        for g in fam.operator_groups:
            ops.add_row(
                str(g["operator_group"]),
                _fmt(g.get("accounts_here")),
                _fmt(g.get("prompts_here")),
                _fmt(g.get("accounts")),
                "\n".join(g.get("campaigns") or []),
            )
        parts.append(ops)
    if fam.orgs:
        orgs = Table(title=f"organisations ({fam.n_orgs:,})", title_justify="left")
        for col in ("organisation", "prompts", "share", "accounts"):
            orgs.add_column(col, overflow="fold")
        for o in fam.orgs:
            orgs.add_row(o["org_id"], _fmt(o["prompts"]), f"{100 * o['share']:.1f}%", _fmt(o["accounts"]))
        parts.append(orgs)
    if fam.ages:
        ages = Table(title="account age at first prompt", title_justify="left")
        ages.add_column("age")
        ages.add_column("accounts", justify="right")
        for label, n in fam.ages:
            ages.add_row(label, f"{n:,}")
        parts.append(ages)
    for e in fam.exemplars[:1]:
        parts.append(Text(f"exemplar (prompt {e.get('prompt_id')})", style="bold"))
        parts.append(Text(e.get("text") or "", overflow="fold"))
    return Group(*parts)
