"""Read a finished run directory and gather what the HTML report and ``show --campaign`` display.

Everything here is bounded so that a report over a 1M-prompt day stays small: per family the top
``TOP_ACCOUNTS`` accounts, ``TOP_ORGS`` organisations, ``EXEMPLARS`` exemplar prompts (each cut to
``EXEMPLAR_CHARS``), and pages for at most ``MAX_FLAGGED_PAGES`` flagged and ``UNFLAGGED_FAMILIES``
unflagged families. Texts are returned as they are in the logs; escaping is the renderer's job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ...config import IngestConfig
from ...errors import ClustererError, InputError
from ...io.artifacts import ACCOUNTS, ASSIGNMENTS, CLUSTERS, MANIFEST, OPERATORS, verify_set
from ...io.ingest import sender_metadata

TOP_ACCOUNTS = 15
TOP_ORGS = 8
EXEMPLARS = 5
EXEMPLAR_CHARS = 1_500
MAX_FLAGGED_PAGES = 150
UNFLAGGED_FAMILIES = 25
MAX_TIME_BINS = 96
# exemplar texts are read back from the run's inputs up to this size on disk (1M prompts: ~40 MB);
# beyond it the report keeps to the exemplar stored in clusters.parquet rather than re-read a huge day
MAX_INPUT_BYTES = 2 * 1024**3

# account age at the account's first prompt in the family, in days: (lower, upper, label)
AGE_BINS: tuple[tuple[float, float, str], ...] = (
    (-math.inf, 1, "< 1 d"),
    (1, 7, "1–7 d"),
    (7, 30, "1–4 wk"),
    (30, 90, "1–3 mo"),
    (90, 365, "3–12 mo"),
    (365, math.inf, "> 1 y"),
)
# clusters.parquet columns that are structure, not evidence (everything else numeric is shown as a feature)
_NOT_FEATURES = {"cluster_id", "size", "n_accounts", "campaign_score", "exemplars"}


@dataclass(frozen=True, slots=True)
class Run:
    """The tables of one finished run (``clusterer run --out DIR``)."""

    path: Path
    manifest: dict[str, Any]
    clusters: pl.DataFrame
    accounts: pl.DataFrame
    operators: pl.DataFrame
    assignments: pl.DataFrame  # prompt_id, account_id, timestamp, cluster_id, flagged [, org_id, account_created_at]
    has_orgs: bool
    has_ages: bool


@dataclass(frozen=True, slots=True)
class ScoreTerms:
    """Why a family scored as it did.

    ``contributions``: ``(term, additive contribution to the campaign logit)`` from the ``contrib_*``
    columns, largest magnitude first (empty when the run has none); ``logit``: their sum;
    ``threshold_logit``: logit of ``campaign.threshold``; ``features``: the raw feature columns.
    """

    contributions: list[tuple[str, float]]
    logit: float | None
    threshold_logit: float | None
    features: list[tuple[str, float | None]]


@dataclass(slots=True)
class Family:
    """Everything one campaign page shows about one template family."""

    cluster_id: int
    info: dict[str, Any]  # the clusters.parquet row
    hours: list[int] = field(default_factory=list)  # prompts per time bin (Day.bin_labels)
    top_accounts: list[dict[str, Any]] = field(default_factory=list)
    n_operator_groups: int = 0
    operator_groups: list[dict[str, Any]] = field(default_factory=list)
    ages: list[tuple[str, int]] | None = None  # accounts per AGE_BINS bin
    orgs: list[dict[str, Any]] | None = None
    n_orgs: int = 0
    exemplars: list[dict[str, Any]] = field(default_factory=list)
    terms: ScoreTerms | None = None
    facts: list[tuple[str, Any]] = field(default_factory=list)  # history / registry

    @property
    def title(self) -> str:
        return self.info.get("campaign_id") or f"cluster {self.cluster_id}"


@dataclass(frozen=True, slots=True)
class Day:
    """The day's rhythm: time bins and prompts per bin, all prompts and the flagged ones."""

    start: dt.datetime | None
    bin_hours: int
    bin_labels: list[str]
    total: list[int]
    flagged: list[int]


def _read(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    try:
        return pl.read_parquet(path, columns=columns)
    except (pl.exceptions.PolarsError, OSError) as err:
        raise InputError(f"{path} cannot be read: {err}") from err


def load_run(path: Path) -> Run:
    """Read a run directory's manifest and tables.

    Raises:
        InputError: the directory is missing, lacks a file of a finished run, or a file cannot be read.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path} is not a directory; pass the --out directory of a finished `clusterer run`")
    missing = [n for n in (MANIFEST, CLUSTERS, ASSIGNMENTS, ACCOUNTS) if not (path / n).is_file()]
    if missing:
        raise InputError(
            f"{path} is not a finished clusterer run (missing {', '.join(missing)}); "
            "pass the --out directory of a finished `clusterer run`"
        )
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path / MANIFEST} cannot be read: {err}") from err
    if not isinstance(manifest, dict):
        raise InputError(f"{path / MANIFEST} is not a clusterer manifest (expected a JSON object)")
    listed = {e.get("name") for e in manifest.get("files") or [] if isinstance(e, dict)}
    if listed:  # the tables shown are the ones the run wrote, not files changed or cut short since
        verify_set(path, "run", [n for n in (CLUSTERS, ASSIGNMENTS, ACCOUNTS, OPERATORS) if n in listed])
    conf = manifest.get("config", {})
    # the metadata column names the run used ([ingest]; [campaign] in runs before clusterer 0.3)
    names = {**conf.get("campaign", {}), **conf.get("ingest", {})}
    cols = IngestConfig(
        org_col=names.get("org_col", "org_id"),
        account_created_col=names.get("account_created_col", "account_created_at"),
    )
    org_col, created_col = cols.org_col, cols.account_created_col
    schema = pl.read_parquet_schema(path / ASSIGNMENTS)
    want = ["prompt_id", "account_id", "timestamp", "cluster_id", "flagged"]
    absent = [c for c in want if c not in schema]
    if absent:
        raise InputError(f"{path / ASSIGNMENTS} lacks columns {absent}; is it a clusterer output?")
    extra = [c for c in (org_col, created_col) if c in schema and c not in want]
    a = _read(path / ASSIGNMENTS, want + extra)
    orgs, created = sender_metadata(a, cols, fill_orgs=False)
    has_orgs = orgs is not None and orgs.null_count() < a.height
    if has_orgs:
        a = a.with_columns(orgs.alias("_org"))
    has_ages = created is not None
    if created is not None:
        a = a.with_columns(created.alias("_created"))
    a = a.select(want + [c for c in ("_org", "_created") if c in a.columns]).rename(
        {"_org": "org_id", "_created": "account_created_at"}, strict=False
    )
    a = a.with_columns(pl.col("flagged").fill_null(False))
    ops_path = path / OPERATORS
    operators = _read(ops_path) if ops_path.is_file() else pl.DataFrame()
    return Run(
        path=path,
        manifest=manifest,
        clusters=_read(path / CLUSTERS),
        accounts=_read(path / ACCOUNTS),
        operators=operators,
        assignments=a,
        has_orgs=has_orgs,
        has_ages=has_ages,
    )


def day_profile(run: Run) -> Day:
    """Prompts per time bin over the day (one-hour bins for a day; wider when the logs span longer)."""
    ts = run.assignments["timestamp"].drop_nulls()
    if ts.len() == 0:
        return Day(None, 1, [], [], [])
    start = ts.min().replace(minute=0, second=0, microsecond=0)
    span_h = (ts.max() - start).total_seconds() / 3600
    bin_hours = max(1, math.ceil((span_h + 1e-9) / MAX_TIME_BINS))
    n_bins = max(1, math.ceil((span_h + 1e-9) / bin_hours))
    b = _bins(run.assignments, start, bin_hours, n_bins)
    total = np.bincount(b.drop_nulls().to_numpy(), minlength=n_bins)
    flagged = np.bincount(b.filter(run.assignments["flagged"]).drop_nulls().to_numpy(), minlength=n_bins)
    labels = [(start + dt.timedelta(hours=i * bin_hours)).strftime("%H:%M") for i in range(n_bins)]
    if span_h > 36:  # several days: say which
        labels = [(start + dt.timedelta(hours=i * bin_hours)).strftime("%m-%d %H:%M") for i in range(n_bins)]
    return Day(start, bin_hours, labels, total.tolist(), flagged.tolist())


def _bins(frame: pl.DataFrame, start: dt.datetime, bin_hours: int, n_bins: int) -> pl.Series:
    secs = (frame["timestamp"] - start).dt.total_seconds()
    return (secs // (3600 * bin_hours)).clip(0, n_bins - 1).cast(pl.Int64).alias("bin")


def select_families(run: Run) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(flagged families by score, largest unflagged families) as rows of clusters.parquet."""
    c = run.clusters
    if c.height == 0:
        return c, c
    flagged = c.filter(pl.col("flagged").fill_null(False)).sort(
        ["campaign_score", "size", "cluster_id"], descending=[True, True, False], nulls_last=True
    )
    unflagged = (
        c.filter(~pl.col("flagged").fill_null(False))
        .sort(["size", "n_accounts", "cluster_id"], descending=[True, True, False])
        .head(UNFLAGGED_FAMILIES)
    )
    return flagged, unflagged


def family_accounts(run: Run, cluster_ids: list[int]) -> pl.DataFrame:
    """One row per (family, account): prompts, first / last seen in the family, the account's totals."""
    a = run.assignments.filter(pl.col("cluster_id").is_in(cluster_ids))
    aggs = [
        pl.len().alias("family_prompts"),
        pl.col("timestamp").min().alias("family_first_seen"),
        pl.col("timestamp").max().alias("family_last_seen"),
    ]
    if run.has_ages:
        aggs.append(pl.col("account_created_at").min().alias("created"))
    per = a.group_by("cluster_id", "account_id").agg(aggs)
    acc_cols = [c for c in ("account_id", "prompts", "operator_group", "flagged", "n_clusters") if c in run.accounts]
    if "account_id" in acc_cols and len(acc_cols) > 1:
        per = per.join(
            run.accounts.select(acc_cols).rename({"flagged": "account_flagged"}, strict=False),
            on="account_id",
            how="left",
        )
    if "operator_group" not in per.columns:
        per = per.with_columns(pl.lit(-1, pl.Int64).alias("operator_group"))
    return per.with_columns(pl.col("operator_group").fill_null(-1))


def operator_group_counts(per_account: pl.DataFrame) -> dict[int, int]:
    """Distinct operator groups (≥ 0) among each family's accounts."""
    g = (
        per_account.filter(pl.col("operator_group") >= 0)
        .group_by("cluster_id")
        .agg(pl.col("operator_group").n_unique())
    )
    return dict(zip(g["cluster_id"].to_list(), g["operator_group"].to_list(), strict=True))


def score_terms(info: dict[str, Any], columns: list[str], manifest: dict[str, Any]) -> ScoreTerms:
    """The ``contrib_*`` terms of one family (largest first) and its raw features."""
    contrib = [(c.removeprefix("contrib_"), info.get(c)) for c in columns if c.startswith("contrib_")]
    # terms that moved the logit (a term with weight 0, or no evidence, is left out); no -0.00
    contrib = [(n, float(v) + 0.0) for n, v in contrib if v is not None and math.isfinite(float(v)) and v != 0]
    contrib.sort(key=lambda t: (-abs(t[1]), t[0]))
    threshold = manifest.get("config", {}).get("campaign", {}).get("threshold")
    thr_logit = None
    if isinstance(threshold, (int, float)) and 0.0 < threshold < 1.0:
        thr_logit = math.log(threshold / (1.0 - threshold))
    feats = []
    for c in columns:
        if c in _NOT_FEATURES or c.startswith(("contrib_", "history_")):
            continue
        v = info.get(c)
        if isinstance(v, bool) or not isinstance(v, (int, float, type(None))):
            continue
        feats.append((c, None if v is None or not math.isfinite(float(v)) else float(v)))
    return ScoreTerms(contrib, sum(v for _, v in contrib) if contrib else None, thr_logit, feats)


def registry_facts(registry: Path | None) -> dict[str, dict[str, Any]]:
    """campaign_id → first_seen, last_seen, days_seen, prompts_total from a campaign registry."""
    if registry is None:
        return {}
    from ...store.registry import load_registry

    camps = load_registry(Path(registry)).campaigns
    cols = ["campaign_id", "first_seen", "last_seen", "days_seen", "prompts_total"]
    return {r["campaign_id"]: r for r in camps.select(cols).iter_rows(named=True)}


def _facts(info: dict[str, Any], reg: dict[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, label in (
        ("history_first_seen", "history: first day with near-duplicates"),
        ("history_days", "history: earlier days with near-duplicates"),
        ("history_near_duplicates", "history: stored near-duplicate prompts"),
        ("history_campaign_id", "history: campaign those prompts carried"),
    ):
        if key in info and info[key] is not None:
            out.append((label, info[key]))
    if info.get("peer_campaign") is not None:  # `clusterer fingerprints match`
        out.append(("peer: matching campaign", f"{info.get('peer_provider')}: {info['peer_campaign']}"))
        out.append(("peer: share of its prompts matching", round(float(info.get("peer_match_share") or 0.0), 3)))
    r = reg.get(info.get("campaign_id") or "")
    if r:
        out += [
            ("registry: first seen", r["first_seen"]),
            ("registry: last seen", r["last_seen"]),
            ("registry: days seen", r["days_seen"]),
            ("registry: prompts over all days", r["prompts_total"]),
        ]
    return out


def exemplar_rows(run: Run, cluster_ids: list[int], per_family: int = EXEMPLARS) -> pl.DataFrame:
    """Up to ``per_family`` rows per family, spread evenly over its prompts in time order.

    Columns: cluster_id, row (input row index), prompt_id, account_id, timestamp.
    """
    a = (
        run.assignments.with_row_index("row")
        .filter(pl.col("cluster_id").is_in(cluster_ids))
        .sort("cluster_id", "timestamp", "row")
    )
    r = pl.int_range(0, pl.len(), dtype=pl.Int64).over("cluster_id")
    n = pl.len().over("cluster_id").cast(pl.Int64)
    m = pl.min_horizontal(n, pl.lit(per_family, pl.Int64))
    # keep ranks p_k = floor(k (n-1) / (m-1)), k = 0..m-1 (first and last included): r is one when the
    # smallest k with p_k >= r, k = ceil(r (m-1) / (n-1)), maps back to it
    span, steps = pl.max_horizontal(n - 1, pl.lit(1)), pl.max_horizontal(m - 1, pl.lit(1))
    k = (r * (m - 1) + span - 1) // span
    keep = pl.when(m <= 1).then(r == 0).otherwise((k <= m - 1) & ((k * (n - 1)) // steps == r))
    out = a.filter(keep)
    return out.select("cluster_id", pl.col("row").cast(pl.Int64), "prompt_id", "account_id", "timestamp")


def input_texts(run: Run, rows: list[int]) -> tuple[dict[int, str], str | None]:
    """Texts of the given input rows, read back from the run's input files when they are unchanged.

    Returns ``(row → text, note)``; ``note`` says why no text was read (inputs moved or changed), in
    which case the report falls back to the one exemplar stored in clusters.parquet.
    """
    from ...io.ingest import read_logs, rows_of

    inputs = run.manifest.get("inputs") or []
    paths = [i.get("path") for i in inputs if isinstance(i, dict)]
    if not rows or not paths:
        return {}, None
    if not all(p and Path(p).is_file() for p in paths):
        return {}, "the run's input files are not at their recorded paths"
    total = sum(int(i.get("bytes") or 0) for i in inputs if isinstance(i, dict))
    if total > MAX_INPUT_BYTES:
        return {}, f"the run's inputs ({total / 1024**3:.1f} GiB) are too large to read back for exemplars"
    known = {f.name for f in dataclasses.fields(IngestConfig)}
    given = {k: v for k, v in (run.manifest.get("config", {}).get("ingest") or {}).items() if k in known}
    try:
        prompts = read_logs(paths, IngestConfig(**given))
    except (ClustererError, TypeError, ValueError) as err:
        return {}, f"the run's input files cannot be read back ({err})"
    # paths resolved: a run recorded before manifests held absolute paths wrote them as given
    recorded = {(str(Path(i.get("path")).resolve()), i.get("xxh3_64")) for i in inputs}
    now = {(str(Path(f.path).resolve()), f.xxh3_64) for f in prompts.files}
    # a stream window's rows are a part of the log it read: its own, by prompt ID
    frame = rows_of(prompts.frame, run.assignments["prompt_id"]) if recorded == now else None
    if frame is None:
        return {}, "the run's input files have changed since the run"
    idx = pl.Series(rows, dtype=pl.Int64)
    texts = frame["text"].gather(idx).to_list()
    return {r: t for r, t in zip(rows, texts, strict=True) if t is not None}, None


def _cut(text: str, n: int = EXEMPLAR_CHARS) -> str:
    return text if len(text) <= n else text[:n] + " …"


def gather_families(
    run: Run,
    day: Day,
    families: pl.DataFrame,
    registry: Path | None = None,
    with_texts: bool = True,
    per_account: pl.DataFrame | None = None,
) -> tuple[list[Family], str | None]:
    """Build a :class:`Family` for each row of ``families`` (a slice of clusters.parquet).

    ``per_account``: :func:`family_accounts` of (at least) these families, when already computed.
    Returns the families in the given order and a note when exemplar texts could not be read back.
    """
    ids = families["cluster_id"].to_list()
    if not ids:
        return [], None
    cols = run.clusters.columns
    per_acc = family_accounts(run, ids) if per_account is None else per_account.filter(pl.col("cluster_id").is_in(ids))
    n_groups = operator_group_counts(per_acc)
    reg = registry_facts(registry)

    # prompts per time bin
    hours: dict[int, np.ndarray] = {}
    if day.start is not None:
        sub = run.assignments.filter(pl.col("cluster_id").is_in(ids))
        b = sub.select("cluster_id", _bins(sub, day.start, day.bin_hours, len(day.total)))
        counts = b.drop_nulls().group_by("cluster_id", "bin").len()
        for cid, grp in counts.partition_by("cluster_id", as_dict=True).items():
            arr = np.zeros(len(day.total), np.int64)
            arr[grp["bin"].to_numpy()] = grp["len"].to_numpy()
            hours[int(cid[0])] = arr

    # top accounts
    top = (
        per_acc.sort(["cluster_id", "family_prompts", "account_id"], descending=[False, True, False])
        .with_columns(pl.int_range(0, pl.len()).over("cluster_id").alias("_r"))
        .filter(pl.col("_r") < TOP_ACCOUNTS)
        .drop("_r")
    )
    top_of = {int(k[0]): g.to_dicts() for k, g in top.partition_by("cluster_id", as_dict=True).items()}

    # operator groups involved
    ops_of: dict[int, list[dict[str, Any]]] = {}
    grouped = per_acc.filter(pl.col("operator_group") >= 0)
    if grouped.height:
        g = grouped.group_by("cluster_id", "operator_group").agg(
            pl.len().alias("accounts_here"), pl.col("family_prompts").sum().alias("prompts_here")
        )
        if run.operators.height and "operator_group" in run.operators.columns:
            g = g.join(run.operators, on="operator_group", how="left")
        g = g.sort(["cluster_id", "prompts_here", "operator_group"], descending=[False, True, False])
        ops_of = {
            int(k[0]): grp.head(TOP_ACCOUNTS).to_dicts()
            for k, grp in g.partition_by("cluster_id", as_dict=True).items()
        }

    # account ages at first prompt in the family
    ages_of: dict[int, list[tuple[str, int]]] = {}
    if run.has_ages:
        age = per_acc.filter(pl.col("created").is_not_null()).select(
            "cluster_id", ((pl.col("family_first_seen") - pl.col("created")).dt.total_seconds() / 86400).alias("d")
        )
        edges = [lo for lo, _, _ in AGE_BINS[1:]]
        for k, grp in age.partition_by("cluster_id", as_dict=True).items():
            idx = np.searchsorted(np.asarray(edges, float), grp["d"].to_numpy(), side="right")
            cnt = np.bincount(idx, minlength=len(AGE_BINS))
            ages_of[int(k[0])] = [(lab, int(c)) for (_, _, lab), c in zip(AGE_BINS, cnt, strict=True)]

    # organisations
    orgs_of: dict[int, list[dict[str, Any]]] = {}
    n_orgs: dict[int, int] = {}
    if run.has_orgs:
        o = (
            run.assignments.filter(pl.col("cluster_id").is_in(ids) & pl.col("org_id").is_not_null())
            .group_by("cluster_id", "org_id")
            .agg(pl.len().alias("prompts"), pl.col("account_id").n_unique().alias("accounts"))
            .sort(["cluster_id", "prompts", "org_id"], descending=[False, True, False])
        )
        for k, grp in o.partition_by("cluster_id", as_dict=True).items():
            total = int(grp["prompts"].sum())
            n_orgs[int(k[0])] = grp.height
            orgs_of[int(k[0])] = [
                {**r, "share": r["prompts"] / total if total else 0.0} for r in grp.head(TOP_ORGS).to_dicts()
            ]

    # exemplars
    ex = exemplar_rows(run, ids)
    texts, note = input_texts(run, ex["row"].to_list()) if with_texts else ({}, None)
    ex_of: dict[int, list[dict[str, Any]]] = {}
    for r in ex.iter_rows(named=True):
        if r["row"] in texts:
            ex_of.setdefault(r["cluster_id"], []).append({**r, "text": _cut(texts[r["row"]])})

    out = []
    for info in families.iter_rows(named=True):
        cid = int(info["cluster_id"])
        exemplars = ex_of.get(cid, [])
        if not exemplars and info.get("exemplar_text"):
            exemplars = [
                {
                    "prompt_id": info.get("exemplar_prompt_id"),
                    "account_id": None,
                    "timestamp": None,
                    "text": info["exemplar_text"],
                }
            ]
        out.append(
            Family(
                cluster_id=cid,
                info=info,
                hours=hours.get(cid, np.zeros(len(day.total), np.int64)).tolist(),
                top_accounts=top_of.get(cid, []),
                n_operator_groups=n_groups.get(cid, 0),
                operator_groups=ops_of.get(cid, []),
                ages=ages_of.get(cid) if run.has_ages else None,
                orgs=orgs_of.get(cid, []) if run.has_orgs else None,
                n_orgs=n_orgs.get(cid, 0),
                exemplars=exemplars,
                terms=score_terms(info, cols, run.manifest),
                facts=_facts(info, reg),
            )
        )
    return out, note


def find_family(run: Run, key: str) -> pl.DataFrame:
    """The clusters.parquet row of a campaign ID (or of a cluster number, for unflagged families).

    Raises:
        InputError: no family has that campaign ID or cluster number.
    """
    c = run.clusters
    hit = c.filter(pl.col("campaign_id") == key) if "campaign_id" in c.columns else c.clear()
    if hit.height == 0 and key.strip().lstrip("-").isdigit():
        hit = c.filter(pl.col("cluster_id") == int(key))
    if hit.height == 0:
        known = c.filter(pl.col("flagged").fill_null(False))["campaign_id"].drop_nulls().head(5).to_list()
        hint = f"; flagged campaigns include {', '.join(known)}" if known else "; this run flagged no campaign"
        raise InputError(f"{run.path}: no campaign with ID {key!r} (nor a cluster with that number){hint}")
    return hit.head(1)
