"""Campaign registry: stable campaign IDs across days, and assigning new prompts to known campaigns.

A registry is a directory with two parquet files and a ``manifest.json`` of their hashes, replaced as one
unit after a run (:func:`clusterer.artifacts.replace_set`) and checked before the next:

- ``campaigns.parquet``: one row per known campaign: ``campaign_id``, ``first_seen`` / ``last_seen``
  (dates), ``days_seen``, ``prompts_total``, ``template``, ``centroid`` (the family's mean embedding
  direction, list[f32]), ``shingles`` (the family's frequent template shingles, list[u64], for matching
  families across days), ``scaffold_shingles`` (shingles of every scaffold variant together, for ``assign``)
  and ``scaffold_variants`` (each variant's scaffold apart, for a stream window's rows joining a family that
  holds the campaign: the shingles in at least half of one template group's prompts; null in a registry of
  an earlier version).
  ``merged_into``: null, or the campaign this one was found to be part of (``clusterer stream``: one window
  clustered two campaigns of earlier windows as one family, e.g. an English and a French variant sent from
  separate accounts); a merged campaign keeps its row (earlier outputs carry its ID) and everything that
  matches it is named after the campaign it was merged into (:func:`aliases`).
- ``daily.parquet``: ``campaign_id``, ``day``, ``prompts``, ``accounts``, ``campaign_score``.

Today's flagged families are matched one-to-one to known campaigns (greedy, best first) when their
shingle sets overlap (Jaccard ≥ ``registry.min_jaccard``) or their centroids agree (cosine ≥
``registry.min_cos``); matched families keep the known ID, the others get a new one, so no new campaign
inherits an old ID.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..accel import fastops
from ..config import RegistryConfig
from ..errors import InputError, OutputError
from ..io import artifacts
from ..io.outputs import write_table

CAMPAIGNS_FILE = "campaigns.parquet"
DAILY_FILE = "daily.parquet"
REGISTRY_FILES = (CAMPAIGNS_FILE, DAILY_FILE)
CAMPAIGN_SCHEMA = {
    "campaign_id": pl.String,
    "first_seen": pl.Date,
    "last_seen": pl.Date,
    "days_seen": pl.UInt32,
    "prompts_total": pl.UInt64,
    "template": pl.String,
    "centroid": pl.List(pl.Float32),
    "shingles": pl.List(pl.UInt64),
    "scaffold_shingles": pl.List(pl.UInt64),
    "merged_into": pl.String,
    "scaffold_variants": pl.List(pl.List(pl.UInt64)),
}
# columns a registry written by an earlier version may lack (read as null)
OPTIONAL_COLUMNS = frozenset({"merged_into", "scaffold_variants"})
NULLABLE = frozenset({"template", "merged_into", "scaffold_variants"})
# the columns a day's family sets for its campaign (the others are counted from the daily table or kept)
CONTENT_COLUMNS = ("campaign_id", "template", "centroid", "shingles", "scaffold_shingles", "scaffold_variants")
DAILY_SCHEMA = {
    "campaign_id": pl.String,
    "day": pl.Date,
    "prompts": pl.UInt32,
    "accounts": pl.UInt32,
    "campaign_score": pl.Float64,
}


@dataclass(frozen=True, slots=True)
class Registry:
    campaigns: pl.DataFrame
    daily: pl.DataFrame


@dataclass(frozen=True, slots=True)
class Family:
    """One of today's flagged families, as the registry sees it."""

    cluster_id: int
    proposed_id: str
    centroid: NDArray[np.float32]
    shingles: NDArray[np.uint64]
    scaffold: NDArray[np.uint64]
    template: str
    prompts: int
    accounts: int
    score: float
    variants: tuple[NDArray[np.uint64], ...] = ()  # each template group's scaffold (see Templates.variants)


def registry_folder(path: Path, out: Path | None = None) -> Path:
    """``path`` checked as an existing registry folder for reading, and ``out`` (a file the command writes)
    as outside it: a file left in the folder would make every later use of the registry refuse it.

    Raises:
        InputError: ``path`` is missing or a file. OutputError: ``out`` lies inside it.
    """
    path = Path(path)
    if path.is_file():
        raise InputError(f"registry {path} is a file, not a registry folder")
    if not path.is_dir():
        raise InputError(f"registry {path} does not exist; build one with `clusterer run --registry DIR`")
    if out is not None and path.resolve() in Path(out).resolve().parents:
        raise OutputError(f"--out {out} is inside the registry {path}; write it elsewhere")
    return path


def load_registry(path: Path) -> Registry:
    """Read and check a registry directory (an absent or empty directory is an empty registry).

    A registry written by this version carries a ``manifest.json`` with each file's SHA-256, checked here;
    one written before lists no hashes and is checked for both files and their columns.

    Raises:
        InputError: ``path`` is a file; the directory holds foreign files; one of the two tables is missing
        while the other is there; a file does not match the manifest, cannot be read or lacks columns;
        campaigns without daily rows (a damaged registry is refused, never silently rebuilt).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"--registry {path} is a file; a registry is a directory (created when absent)")
    if not path.is_dir():
        return Registry(campaigns=pl.DataFrame(schema=CAMPAIGN_SCHEMA), daily=pl.DataFrame(schema=DAILY_SCHEMA))
    try:
        artifacts.check_target(path, set(REGISTRY_FILES) | {artifacts.MANIFEST}, "--registry")
    except OutputError as err:
        raise InputError(str(err)) from err
    present = [name for name in REGISTRY_FILES if (path / name).is_file()]
    if present and len(present) < len(REGISTRY_FILES):
        missing = [name for name in REGISTRY_FILES if name not in present]
        raise InputError(
            f"registry {path} is damaged: it has {', '.join(present)} but no {', '.join(missing)}; restore the "
            "missing file (or point --registry at a new directory); refusing to run, which would lose campaigns"
        )
    if (path / artifacts.MANIFEST).is_file():
        artifacts.verify_set(path, "registry")
    out = []
    for name, schema in ((CAMPAIGNS_FILE, CAMPAIGN_SCHEMA), (DAILY_FILE, DAILY_SCHEMA)):
        f = path / name
        if not f.is_file():
            out.append(pl.DataFrame(schema=schema))
            continue
        try:
            df = pl.read_parquet(f)
        except (pl.exceptions.PolarsError, OSError) as err:
            raise InputError(f"registry file {f} cannot be read: {_first_line(err)}") from err
        df = df.with_columns(pl.lit(None, schema[c]).alias(c) for c in OPTIONAL_COLUMNS if c in schema and c not in df)
        missing = [c for c in schema if c not in df.columns]
        if missing:
            raise InputError(f"registry file {f} lacks columns {missing}; is {path} a clusterer registry?")
        out.append(df.select([pl.col(c).cast(t) for c, t in schema.items()]))
    reg = Registry(campaigns=out[0], daily=out[1])
    orphans = reg.campaigns.filter(~pl.col("campaign_id").is_in(reg.daily["campaign_id"].implode()))
    if orphans.height:
        raise InputError(
            f"registry {path} is damaged: {orphans.height} campaigns have no rows in {DAILY_FILE} (e.g. "
            f"{', '.join(orphans['campaign_id'].head(3).to_list())}); restore {DAILY_FILE} from a backup"
        )
    known = set(reg.campaigns["campaign_id"].to_list())
    dangling = reg.campaigns.filter(pl.col("merged_into").is_not_null() & ~pl.col("merged_into").is_in(list(known)))
    if dangling.height:
        raise InputError(
            f"registry {path} is damaged: {dangling.height} campaigns are merged into campaigns it does not hold "
            f"(e.g. {dangling['campaign_id'][0]} → {dangling['merged_into'][0]})"
        )
    dims = {len(c) for c in reg.campaigns["centroid"].to_list()}
    if len(dims) > 1:
        raise InputError(f"registry {path} is damaged: its centroids have several dimensions {sorted(dims)}")
    return reg


def load_campaigns(path: Path, out: Path | None = None) -> Registry:
    """:func:`load_registry` of the folder ``path`` names (:func:`registry_folder`) for a command that reads its
    campaigns (``clusterer assign``, ``fingerprints export``): one without any is refused.

    Raises:
        InputError: a missing, damaged or empty registry.
    """
    reg = load_registry(registry_folder(path, out))
    if reg.campaigns.height == 0:
        raise InputError(f"registry {path} holds no campaigns; run `clusterer run --registry {path}` first")
    return reg


def registry_dim(reg: Registry) -> int | None:
    """Embedding dimension of the registry's centroids (None when it holds no campaigns)."""
    if reg.campaigns.height == 0:
        return None
    return len(reg.campaigns["centroid"][0])


def registry_model(path: Path) -> str | None:
    """The embedding model key a registry's manifest records (None: written before it did, or no manifest)."""
    try:
        key = json.loads((Path(path) / artifacts.MANIFEST).read_text(encoding="utf-8")).get("model_key")
    except (OSError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None


def check_dim(reg: Registry, path: Path, dim: int, model: str, key: str | None = None) -> None:
    """Refuse a registry whose centroids were made by a model of another dimension, or — when ``key`` (the
    encoder's model key) is given and the registry records one — by another model of the same dimension
    (MiniLM and the hashing encoder are both 384-dim: their centroids are not comparable).

    Raises:
        InputError: the dimensions or the recorded model differ.
    """
    have = registry_dim(reg)
    if have is not None and have != dim:
        raise InputError(
            f"registry {path} holds {have}-dim campaign centroids; this run embeds with {model!r} ({dim}-dim); "
            "use the model the registry was built with, or a new --registry directory"
        )
    built = registry_model(path) if key is not None and have is not None else None
    if built is not None and built != key:
        raise InputError(
            f"registry {path} holds campaigns embedded with {built}; this run embeds with {key} ({model!r}); "
            "use the model (and embedding options) the registry was built with, or a new --registry directory"
        )


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _jaccard(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> float:
    if len(a) == 0 or len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


MAX_VARIANTS = 32  # scaffold variants a campaign keeps (clusterer stream gathers those of every window)
SAME_VARIANT = 0.8  # a scaffold at least this Jaccard-similar to a kept one is that variant again


def gather_variants(*lists: list[list[int]] | None) -> list[list[int]]:
    """The scaffold variants of ``lists`` in order (earlier first), each kept unless it is empty or
    ``SAME_VARIANT``-similar to one kept before it, at most ``MAX_VARIANTS``: a campaign's variants over the
    windows of a day, where each window finds most of them again."""
    kept: list[NDArray[np.uint64]] = []
    for variants in lists:
        for v in variants or []:
            a = np.unique(np.asarray(v, dtype=np.uint64))
            if len(kept) >= MAX_VARIANTS:
                break
            if len(a) and all(_jaccard(a, b) < SAME_VARIANT for b in kept):
                kept.append(a)
    return [a.tolist() for a in kept]


def aliases(campaigns: pl.DataFrame) -> dict[str, str]:
    """Campaign → the campaign it resolves to: itself, or the end of its ``merged_into`` chain (a cycle, which
    :func:`apply_merges` never writes, resolves to its smallest ID)."""
    if "merged_into" not in campaigns.columns:
        return {c: c for c in campaigns["campaign_id"].to_list()}
    parent = dict(zip(campaigns["campaign_id"].to_list(), campaigns["merged_into"].to_list(), strict=True))
    out: dict[str, str] = {}
    for cid in parent:
        seen, cur = [cid], cid
        while (nxt := parent.get(cur)) is not None:
            if nxt in seen:
                cur = min(seen)
                break
            cur = nxt
            seen.append(cur)
        out[cid] = cur
    return out


def apply_merges(reg: Registry, merges: dict[str, str]) -> Registry:
    """The registry with each campaign of ``merges`` (ID → the ID it is part of) marked ``merged_into`` that
    campaign's root; roots are never marked, so no chain becomes a cycle."""
    if not merges:
        return reg
    root = aliases(reg.campaigns)
    target = {}
    for src, dst in merges.items():
        s, d = root.get(src, src), root.get(dst, dst)
        if s != d and src in root and d in root:
            target[src] = d
            if s != src:
                target[s] = d
    campaigns = reg.campaigns.with_columns(
        pl.col("campaign_id")
        .replace_strict(target, default=pl.col("merged_into"), return_dtype=pl.String)
        .alias("merged_into")
    )
    return Registry(campaigns=campaigns, daily=reg.daily)


def match_families(reg: Registry, families: list[Family], cfg: RegistryConfig) -> dict[int, str]:
    """Campaign ID for each of today's families: a known ID when it matches, else a new unused one."""
    known = reg.campaigns
    ids: dict[int, str] = {}
    used: set[str] = set(known["campaign_id"].to_list())
    root = aliases(known)
    if known.height and families:
        cents = np.array(known["centroid"].to_list(), dtype=np.float32)
        shingles = [np.asarray(s, dtype=np.uint64) for s in known["shingles"].to_list()]
        cands = []
        for fi, fam in enumerate(families):
            cos = cents @ fam.centroid if cents.size else np.zeros(0)
            for ki in range(known.height):
                jac = _jaccard(fam.shingles, shingles[ki])
                if jac >= cfg.min_jaccard or cos[ki] >= cfg.min_cos:
                    cands.append((jac + float(cos[ki]), fi, ki))
        taken_f, taken_k = set(), set()
        for _, fi, ki in sorted(cands, key=lambda c: (-c[0], c[1], c[2])):
            if fi in taken_f or ki in taken_k:
                continue
            taken_f.add(fi)
            taken_k.add(ki)
            ids[families[fi].cluster_id] = root[known["campaign_id"][ki]]
    for fam in families:
        if fam.cluster_id in ids:
            continue
        new, n = fam.proposed_id, 2
        while new in used:
            new, n = f"{fam.proposed_id}-{n}", n + 1
        used.add(new)
        ids[fam.cluster_id] = new
    return ids


def campaign_stats(daily: pl.DataFrame) -> pl.DataFrame:
    """Per campaign of a daily table: ``first_seen``, ``last_seen``, ``days_seen``, ``prompts_total``."""
    return daily.group_by("campaign_id").agg(
        pl.col("day").min().alias("first_seen"),
        pl.col("day").max().alias("last_seen"),
        pl.col("day").n_unique().cast(pl.UInt32).alias("days_seen"),
        pl.col("prompts").sum().cast(pl.UInt64).alias("prompts_total"),
    )


def update_registry(reg: Registry, families: list[Family], ids: dict[int, str], day: dt.date) -> Registry:
    """Registry after ``day``: today's families replace the day's rows of the daily table (a re-run of a day
    counts once); each seen campaign takes today's template, centroid and shingles; first / last seen, days
    seen and total prompts are recomputed from the daily table; campaigns not seen today stay as they were."""
    daily_today = pl.DataFrame(
        {
            "campaign_id": [ids[f.cluster_id] for f in families],
            "day": [day] * len(families),
            "prompts": [f.prompts for f in families],
            "accounts": [f.accounts for f in families],
            "campaign_score": [f.score for f in families],
        },
        schema=DAILY_SCHEMA,
    )
    daily = pl.concat([reg.daily.filter(pl.col("day") != day), daily_today]).sort(["day", "campaign_id"])
    stats = campaign_stats(daily)
    today = pl.DataFrame(
        {
            "campaign_id": [ids[f.cluster_id] for f in families],
            "template": [f.template for f in families],
            "centroid": [f.centroid.astype(np.float32).tolist() for f in families],
            "shingles": [f.shingles.astype(np.uint64).tolist() for f in families],
            "scaffold_shingles": [f.scaffold.astype(np.uint64).tolist() for f in families],
            "scaffold_variants": [[v.astype(np.uint64).tolist() for v in f.variants] for f in families],
        },
        schema={c: CAMPAIGN_SCHEMA[c] for c in CONTENT_COLUMNS},
    )
    content = pl.concat(
        [
            reg.campaigns.select(today.columns).filter(~pl.col("campaign_id").is_in(today["campaign_id"].implode())),
            today,
        ]
    )
    content = content.join(reg.campaigns.select("campaign_id", "merged_into"), on="campaign_id", how="left")
    campaigns = content.join(stats, on="campaign_id", how="inner").select(list(CAMPAIGN_SCHEMA))
    return Registry(campaigns=campaigns.sort("campaign_id"), daily=daily)


def save_registry(path: Path, reg: Registry, model_key: str | None = None) -> None:
    """Replace the registry directory's content as one unit (both tables and a manifest with their hashes
    and the embedding model key of its centroids: ``model_key``, or the one it recorded before).

    Raises:
        OutputError: the directory cannot be written (the previous registry stays as it was).
    """
    from .. import __version__

    manifest = {
        "tool": "clusterer",
        "kind": "registry",
        "version": __version__,
        "campaigns": reg.campaigns.height,
        "dim": registry_dim(reg),
        "model_key": model_key or registry_model(path),
        "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    files = {
        CAMPAIGNS_FILE: lambda p: write_table(reg.campaigns, p, frozenset(CAMPAIGN_SCHEMA) - NULLABLE),
        DAILY_FILE: lambda p: write_table(reg.daily, p, frozenset(DAILY_SCHEMA)),
    }
    artifacts.replace_set(Path(path), files, manifest, set(REGISTRY_FILES), "--registry")


_ROW_BLOCK = 50_000  # prompts matched at a time by _known_pairs


def assign_to_known(
    reg: Registry,
    indptr: NDArray[np.int64],
    hashes: NDArray[np.uint64],
    min_containment: float,
    min_shingles: int,
    variants: bool = False,
) -> tuple[list[str | None], NDArray[np.float32]]:
    """Known campaign of each prompt from its shingles (CSR), without re-clustering.

    A campaign's scaffolds are its scaffold set (every variant's shingles together) and each variant's scaffold
    apart (``scaffold_variants``). A prompt is assigned to the campaign it shares the most shingles with (with
    one of its scaffolds; ties: the campaign first in the registry) when it qualifies for one of that
    campaign's scaffolds: it holds at least ``min_shingles`` of its shingles and they are at least
    ``min_containment`` of it. The variants let a prompt of a short variant qualify that holds too small a
    share of a family's whole set — a set that in ``clusterer stream`` gathers the variants of every window of
    the day; they never make a prompt another campaign's than the one it shares most with (measured: a prompt
    taking the qualifying campaign it shares most with, when the one it shares most with does not qualify,
    cut a streamed day's ID agreement from 94.7% to 89.3%). A campaign merged into
    another names its prompts after that one (:func:`aliases`). ``variants``: read the variants' scaffolds
    too (a stream window, where such a row only joins a family already holding the campaign); by default the
    whole sets alone — ``clusterer assign`` labels a prompt with no family around it, and a variant's scaffold
    can be generic (measured on two generated days: 91.6% → 92.5% of continuing campaigns' prompts labelled
    right, but ordinary prompts labelled 0 → 0.038%: Japanese role-play system prompts holding the persona
    campaign's Japanese variant's phrasing). Returns the campaign ID per prompt (None when none qualifies)
    and the containment (of the qualifying scaffold, or of the one it shares most with).
    """
    pairs = _known_pairs(reg, indptr, hashes, min_containment, min_shingles, variants)
    return _pick_known(reg, pairs, len(indptr) - 1)


def assign_to_known_both(
    reg: Registry, indptr: NDArray[np.int64], hashes: NDArray[np.uint64], min_containment: float, min_shingles: int
) -> tuple[list[str | None], list[str | None]]:
    """:func:`assign_to_known` by the whole sets and with the variants, from one lookup of the prompts'
    shingles: (the campaign IDs by the whole sets, the campaign IDs with the variants)."""
    pairs = _known_pairs(reg, indptr, hashes, min_containment, min_shingles, True)
    n = len(indptr) - 1
    whole = _pick_known(reg, None if pairs is None else pairs.filter(pl.col("whole")), n)[0]
    return whole, _pick_known(reg, pairs, n)[0]


def _known_pairs(
    reg: Registry,
    indptr: NDArray[np.int64],
    hashes: NDArray[np.uint64],
    min_containment: float,
    min_shingles: int,
    variants: bool,
) -> pl.DataFrame | None:
    """Per prompt (``r``) and scaffold of a campaign (``c``: its row in the registry; ``whole``: its whole
    scaffold set, else one variant's scaffold): the shingles it shares (``n``), their share of the scaffold
    (``cont``) and whether it qualifies (``ok``); None when no prompt shares any."""
    n = len(indptr) - 1
    if reg.campaigns.height == 0 or n == 0:
        return None
    apart = (
        reg.campaigns["scaffold_variants"].to_list()
        if variants and "scaffold_variants" in reg.campaigns.columns
        else [None] * reg.campaigns.height
    )
    sets, owner, whole = [], [], []
    for c, full in enumerate(reg.campaigns["scaffold_shingles"].to_list()):
        for v, s in enumerate([full, *(apart[c] or [])]):
            sets.append(np.asarray(s, dtype=np.uint64))
            owner.append(c)
            whole.append(v == 0)
    camp = np.concatenate([np.full(len(s), e, np.int64) for e, s in enumerate(sets)])
    h = np.concatenate(sets)
    order = np.argsort(h, kind="stable")
    h, camp = h[order], camp[order]
    k = len(sets)
    codes, counts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    # a block of prompts at a time: per-shingle index arrays over a whole 1M-prompt day are gigabytes, and a
    # prompt's (prompt, scaffold) counts never span two blocks
    for start in range(0, n, _ROW_BLOCK):
        stop = min(start + _ROW_BLOCK, n)
        q = hashes[indptr[start] : indptr[stop]]
        lo = np.searchsorted(h, q, side="left")
        reps = np.searchsorted(h, q, side="right") - lo
        hit = reps > 0
        lo, reps = lo[hit], reps[hit]
        prow = np.repeat(np.repeat(np.arange(start, stop), np.diff(indptr[start : stop + 1]))[hit], reps)
        # the entries lo[q]..hi[q]-1 of every query q, without a Python loop over the queries
        pcamp = camp[np.repeat(lo - np.r_[0, np.cumsum(reps)[:-1]], reps) + np.arange(int(reps.sum()))]
        code, count = np.unique(prow * k + pcamp, return_counts=True)
        codes.append(code)
        counts.append(count)
    code, counts = np.concatenate(codes), np.concatenate(counts)
    if len(code) == 0:
        return None
    r, e = code // k, code % k
    size = np.array([max(len(s), 1) for s in sets], dtype=np.float64)
    c = np.asarray(owner, np.int64)[e]
    return pl.DataFrame(
        {"r": r, "c": c, "whole": np.asarray(whole)[e], "n": counts, "cont": counts / size[e]}
    ).with_columns(((pl.col("cont") >= min_containment) & (pl.col("n") >= min_shingles)).alias("ok"))


def _pick_known(reg: Registry, pairs: pl.DataFrame | None, n: int) -> tuple[list[str | None], NDArray[np.float32]]:
    """Per prompt of ``n`` the campaign it shares the most shingles with (with one of its scaffolds in
    ``pairs``, :func:`_known_pairs`; ties: the campaign first in the registry) when one of that campaign's
    scaffolds qualifies (None otherwise), and the containment (of the qualifying scaffold, or of the one it
    shares most with)."""
    best = np.zeros(n, np.float32)
    ids: list[str | None] = [None] * n
    if pairs is None or pairs.height == 0:
        return ids, best
    pairs = pairs.group_by("r", "c").agg(  # per prompt and campaign: the most shingles it shares with one of its
        pl.col("n").max(),  # scaffolds, whether one qualifies
        pl.col("ok").any(),
        pl.when(pl.col("ok").any()).then(pl.col("cont").filter(pl.col("ok")).max()).otherwise(pl.col("cont").max()),
    )
    r, c, shared = (pairs[x].to_numpy() for x in ("r", "c", "n"))
    sel = fastops.best_per_group(r, shared, c)  # per prompt: the most shared shingles, ties to the lower campaign
    best[r[sel]] = pairs["cont"].to_numpy()[sel]
    ok = pairs["ok"].to_numpy()[sel]
    root = aliases(reg.campaigns)
    names = [root[x] for x in reg.campaigns["campaign_id"].to_list()]
    for rr, cc in zip(r[sel][ok].tolist(), c[sel][ok].tolist(), strict=True):
        ids[rr] = names[cc]
    return ids, best


class Naming:
    """The registry's part in one run: names today's flagged families (the ``namer`` that
    :func:`clusterer.campaigns.decisions.decide` calls) by matching them to known campaigns, and makes the
    registry after the day from the decisions.

    ``centroid``: float32 (k, d) per family; ``frequent`` / ``common``: per family its frequent template
    shingles and every variant's scaffold shingles; ``template``: its rendered template; ``variants``: per
    family each variant's scaffold apart (:attr:`~clusterer.text.templates.Templates.variants`); ``owners``:
    per family and variant the campaign its rows carry (a stream window), the variants kept being those
    owned by the campaign the family is named (None: all of them).
    """

    def __init__(
        self,
        reg: Registry,
        cfg: RegistryConfig,
        centroid: NDArray[np.float32],
        frequent: list[NDArray[np.uint64]],
        common: list[NDArray[np.uint64]],
        template: list[str],
        variants: list[list[NDArray[np.uint64]]] | None = None,
        owners: list[list[str | None]] | None = None,
    ) -> None:
        self.reg, self.cfg = reg, cfg
        self._centroid, self._frequent, self._common, self._template = centroid, frequent, common, template
        self._variants, self._owners = variants, owners
        self.families: dict[int, Family] = {}

    def __call__(self, cids: list[int], proposed: list[str]) -> dict[int, str]:
        for c, p in zip(cids, proposed, strict=True):
            variants = tuple(self._variants[c]) if self._variants is not None else ()
            self.families[c] = Family(
                c, p, self._centroid[c], self._frequent[c], self._common[c], self._template[c], 0, 0, 0.0, variants
            )
        return match_families(self.reg, list(self.families.values()), self.cfg)

    def updated(self, clusters: pl.DataFrame, day: dt.date) -> Registry:
        """The registry after ``day``, from the decided clusters (``cluster_id``, ``flagged``, ``prompts``,
        ``accounts``, ``campaign_score``, ``campaign_id``)."""
        flagged = clusters.filter(pl.col("flagged"))
        if flagged.height == 0:  # nothing flagged (a quiet day may have no families at all): the day has no rows
            return update_registry(self.reg, [], {}, day)
        fams = [
            dataclasses.replace(self.families[c], prompts=int(p), accounts=int(a), score=float(s))
            for c, p, a, s in zip(
                flagged["cluster_id"], flagged["prompts"], flagged["accounts"], flagged["campaign_score"], strict=True
            )
        ]
        ids = dict(zip(flagged["cluster_id"].to_list(), flagged["campaign_id"].to_list(), strict=True))
        if self._owners is not None:
            root = aliases(self.reg.campaigns)
            fams = [
                dataclasses.replace(
                    f,
                    variants=tuple(
                        v
                        for v, o in zip(f.variants, self._owners[f.cluster_id], strict=True)
                        if o is not None and root.get(o, o) == root.get(ids[f.cluster_id], ids[f.cluster_id])
                    ),
                )
                for f in fams
            ]
        return update_registry(self.reg, fams, ids, day)
