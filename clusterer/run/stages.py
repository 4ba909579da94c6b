"""The stages of a run, each a named function ``stage(day, cfg, engine, <earlier artefacts>) -> artefact``.

A stage reads the shared :class:`~clusterer.run.day.Day`, its config and the artefacts of earlier stages; it
never reads the CLI or the environment nor picks its own device (``engine.device``), and it runs its heavy
primitives through ``engine``, which decides where they run. :mod:`clusterer.run.pipeline` orders and times
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..accel import fastops
from ..campaigns.decisions import Decisions, decide
from ..clustering.families import Grouping, group_fragments
from ..clustering.hdbscan import Clusters, cluster_edges
from ..clustering.refine import attach_by_template, attach_noise, core_share, propagate_labels
from ..clustering.summary import Summary, summarise
from ..config import RunConfig
from ..graph.edges import Edges, Pairs, distance, knn_pairs, merge_pairs, score_edges
from ..graph.knn import Knn, expand_knn
from ..graph.lsh import Signatures, signatures
from ..io import outputs
from ..io.ingest import Prompts
from ..store.history import annotate_clusters
from ..store.registry import Naming, Registry, assign_to_known, check_dim
from ..text.normalise import text_keys, unspace
from ..text.skeleton import Skeletons, build_skeletons
from ..text.templates import Templates, describe_templates
from ..vectors.encoders import load_encoder
from ..vectors.rows import RowVectors, distinct_rows
from .day import Day
from .engine import LocalEngine


def normalise_stage(prompts: Prompts, cfg: RunConfig, engine: LocalEngine) -> Day:
    """Normalise the text and build the shared day object."""
    return Day.build(prompts, engine.normalise(prompts.frame["text"], cfg.normalise), cfg.ingest)


@dataclass(frozen=True, slots=True)
class ToEmbed:
    """The distinct texts to embed (``texts``, keys ``keys``) and, per embedded row, its text (``inverse``);
    ``templated``: bool (m,) rows embedded as their scaffold view."""

    texts: list[str]
    keys: NDArray[np.uint64]
    inverse: NDArray[np.int64]
    templated: NDArray[np.bool_]


def skeleton_stage(day: Day, cfg: RunConfig, engine: LocalEngine) -> tuple[Skeletons, ToEmbed]:
    """Skeletons of the embedded rows, and what each row embeds: the scaffold view of templated prompts
    (payload masked), the text itself otherwise."""
    sk = build_skeletons(day.texts, cfg.skeleton, executor=engine)
    templated = sk.coverage >= cfg.skeleton.view_min_coverage
    to_embed = pl.select(pl.when(pl.Series(templated)).then(sk.view).otherwise(day.texts)).to_series()
    to_embed = unspace(to_embed)  # the encoder reads CJK / Thai as written; only shingles need the spaces
    keys, first, inverse = fastops.unique_first_inverse(text_keys(to_embed))
    return sk, ToEmbed(to_embed.gather(first).to_list(), keys, inverse.ravel(), templated)


@dataclass(frozen=True, slots=True)
class Embedded:
    """The rows' vectors (``emb.vectors`` distinct, ``emb.of_row`` per embedded row) and the cache counts."""

    emb: RowVectors
    model_key: str
    from_cache: int
    computed: int


def embed_stage(
    day: Day,
    cfg: RunConfig,
    engine: LocalEngine,
    todo: ToEmbed,
    registry: tuple[Registry, Path] | None = None,
    progress: Any = None,
) -> Embedded:
    """Embed the distinct texts; distinct texts can share a vector (equal opening tokens), so each vector is
    kept once. With ``registry`` (loaded, its folder), its dimension is checked against the encoder's."""
    encoder = load_encoder(cfg.embed, engine.device)
    if registry is not None:  # a model path's dimension is known only now
        check_dim(registry[0], registry[1], encoder.dim, cfg.embed.model)
    emb = engine.embed(todo.texts, todo.keys, encoder, cfg.embed, progress=progress)
    vectors, of_vec = distinct_rows(emb.emb)
    return Embedded(RowVectors(vectors, of_vec[todo.inverse]), emb.model_key, emb.from_cache, emb.computed)


def knn_stage(day: Day, cfg: RunConfig, engine: LocalEngine, vec: Embedded) -> Knn:
    """k nearest neighbours of every embedded row (searched over the distinct vectors, expanded to rows)."""
    return expand_knn(engine.knn(vec.emb.vectors, cfg.graph), vec.emb.of_row, cfg.graph.k)


def signatures_stage(day: Day, cfg: RunConfig, engine: LocalEngine, sk: Skeletons) -> Signatures:
    return signatures(sk, cfg.skeleton, cfg.seed, engine.device)


def candidates_stage(day: Day, cfg: RunConfig, engine: LocalEngine, knn: Knn, sigs: Signatures) -> Pairs:
    """Candidate pairs: the kNN graph's and the MinHash-LSH buckets'."""
    return merge_pairs(knn_pairs(knn), engine.lsh(sigs, cfg.graph), n=day.m)


def overlap_stage(
    day: Day, cfg: RunConfig, engine: LocalEngine, pairs: Pairs, sigs: Signatures, vec: Embedded
) -> Edges:
    """Score every candidate pair: skeleton overlap and embedding cosine."""
    return score_edges(pairs, vec.emb, engine.overlap(sigs, pairs), cfg.graph)


@dataclass(frozen=True, slots=True)
class Clustering:
    """``clusters``: HDBSCAN's fragments; ``grouping``: the families (``grouping.labels`` per embedded row);
    ``fit``: float32 (m,) share of its fragment's scaffold each row carries."""

    clusters: Clusters
    grouping: Grouping
    fit: NDArray[np.float32]

    @property
    def labels(self) -> NDArray[np.int64]:
        return self.grouping.labels


def cluster_stage(
    day: Day, cfg: RunConfig, engine: LocalEngine, edges: Edges, sk: Skeletons, vec: Embedded
) -> Clustering:
    """HDBSCAN over the edges, noise attached to fragments, fragments grouped into families."""
    c = cfg.cluster
    clusters = cluster_edges(day.m, edges.i, edges.j, distance(edges.sim), c)
    attached = attach_noise(clusters.labels, edges.i, edges.j, edges.sim, c.attach_min_sim)
    attached = propagate_labels(
        attached, edges.i, edges.j, edges.sim, c.grow_min_sim, c.grow_min_votes, c.grow_min_share, c.grow_rounds
    )
    attached = attach_by_template(attached, sk.indptr, sk.hashes, c.attach_template, c.attach_template_shingles)
    fit = core_share(attached, sk.indptr, sk.hashes, c.attach_template_shingles)
    grouping = group_fragments(
        attached,
        day.accounts[day.rows],
        vec.emb,
        day.texts,
        sk,
        c,
        cfg.skeleton.ngram,
        cfg.embed.encoder_languages(),
        orgs=day.org_codes,
        times=day.times(),
    )
    return Clustering(clusters, grouping, fit)


def templates_stage(
    day: Day, cfg: RunConfig, engine: LocalEngine, clu: Clustering, sk: Skeletons, sigs: Signatures
) -> Templates:
    return describe_templates(clu.labels, day.texts, sk, sigs, cfg.skeleton, cfg.seed)


@dataclass(frozen=True, slots=True)
class Campaigns:
    """The campaign decisions, the families' vector summary, and the registry's naming (None without one)."""

    decisions: Decisions
    summary: Summary
    naming: Naming | KeepNames | None


def held_campaigns(
    day: Day, cfg: RunConfig, registry: Registry, keep: frozenset[str], labels: NDArray[np.int64]
) -> dict[int, str]:
    """Clusters most of whose prompts belong to one of the registry campaigns ``keep`` by the ``assign`` rule
    (the prompt holds ≥ ``assign_min_shingles`` of the campaign's scaffold shingles and ≥
    ``assign_min_containment`` of the set): cluster → that campaign's ID. Several clusters may hold one
    campaign (a campaign split into fragments in a window keeps its one ID)."""
    from ..text.skeleton import shingle_sets

    known = Registry(
        campaigns=registry.campaigns.filter(pl.col("campaign_id").is_in(sorted(keep))), daily=registry.daily
    )
    if known.campaigns.height == 0 or len(day.rows) == 0:
        return {}
    indptr, hashes = shingle_sets(day.texts, cfg.skeleton.ngram)
    ids, _ = assign_to_known(
        known, indptr, hashes, cfg.registry.assign_min_containment, cfg.registry.assign_min_shingles
    )
    df = pl.DataFrame({"c": labels, "id": pl.Series(ids, dtype=pl.String)}).filter(pl.col("c") >= 0)
    size = df.group_by("c").agg(pl.len().alias("n"))
    top = (
        df.filter(pl.col("id").is_not_null())
        .group_by("c", "id")
        .agg(pl.len().alias("k"))
        .sort(["c", "k", "id"], descending=[False, True, False])
        .group_by("c", maintain_order=True)
        .first()
        .join(size, on="c")
        .filter(2 * pl.col("k") > pl.col("n"))
    )
    return {int(c): str(i) for c, i in zip(top["c"], top["id"], strict=True)}


def anchored_campaigns(labels: NDArray[np.int64], anchors: dict[int, str], min_anchors: int = 3) -> dict[int, str]:
    """Clusters holding at least ``min_anchors`` carried exemplars (``anchors``: input row → the campaign it was
    flagged with in an earlier window), most of one campaign: cluster → that campaign's ID. ``labels``: the
    cluster of each input row."""
    if not anchors:
        return {}
    rows = np.fromiter(anchors, np.int64, len(anchors))
    df = pl.DataFrame({"c": labels[rows], "id": pl.Series(list(anchors.values()), dtype=pl.String)})
    top = (
        df.filter(pl.col("c") >= 0)
        .group_by("c", "id")
        .agg(pl.len().alias("k"))
        .with_columns(pl.col("k").sum().over("c").alias("n"))
        .sort(["c", "k", "id"], descending=[False, True, False])
        .group_by("c", maintain_order=True)
        .first()
        .filter((pl.col("k") >= min_anchors) & (2 * pl.col("k") > pl.col("n")))
    )
    return {int(c): str(i) for c, i in zip(top["c"], top["id"], strict=True)}


class KeepNames:
    """A registry naming that gives every cluster of ``held`` (:func:`held_campaigns`) its campaign's ID and
    names the other flagged clusters as the registry does."""

    def __init__(self, naming: Naming, held: dict[int, str]) -> None:
        self.naming, self.held = naming, held

    def __call__(self, cids: list[int], proposed: list[str]) -> dict[int, str]:
        ids = self.naming(cids, proposed)
        return {c: self.held.get(c, i) for c, i in ids.items()}

    def updated(self, clusters: pl.DataFrame, day: Any) -> Registry:
        return self.naming.updated(clusters, day)


def campaigns_stage(
    day: Day,
    cfg: RunConfig,
    engine: LocalEngine,
    clu: Clustering,
    tmpl: Templates,
    vec: Embedded,
    registry: Registry | None = None,
    keep: frozenset[str] = frozenset(),
    anchors: dict[int, str] | None = None,
) -> Campaigns:
    """Score the families, flag campaigns, accounts and operator groups; name flagged families from the
    registry when there is one. A flagged family that holds one of the registry campaigns ``keep`` (most of
    its prompts carry its scaffold, :func:`held_campaigns`, or most of its carried exemplars, ``anchors``,
    were flagged with it: :func:`anchored_campaigns`) takes that campaign's ID. Flags stay the score's: a
    family is not flagged for matching a campaign (measured: such flags only ever added ordinary families
    that one window had flagged)."""
    k = len(tmpl.text)
    summary = summarise(clu.labels, vec.emb, day.rows, k)
    naming = None
    if registry is not None:
        naming = Naming(registry, cfg.registry, summary.centroid, tmpl.frequent, tmpl.common, tmpl.text)
        if keep:
            held = held_campaigns(day, cfg, registry, keep, clu.labels)
            held.update(anchored_campaigns(day.scatter(clu.labels, -1, np.int64), anchors or {}))
            naming = KeepNames(naming, held)
    info = pl.DataFrame(
        {
            "cluster_id": np.arange(k, dtype=np.int64),
            "rigidity": tmpl.rigidity,
            "template_coverage": tmpl.coverage,
            "template_fit": tmpl.fit,
            "template": pl.Series(tmpl.text, dtype=pl.String),
        }
    )
    dec = decide(
        day.frame,
        day.scatter(clu.labels, -1, np.int64),
        day.norm.key,
        info,
        tmpl.key,
        cfg.campaign,
        namer=naming,
        fit=day.scatter(clu.fit, 0.0, np.float32),
        accounts=(day.account_ids, day.accounts),
        orgs=day.orgs if day.has_orgs else None,
        created=day.created,
        network=day.network,
    )
    return Campaigns(dec, summary, naming)


@dataclass(frozen=True, slots=True)
class Tables:
    """The four output tables, and per input row its status and its row of the distinct vectors."""

    assignments: pl.DataFrame
    clusters: pl.DataFrame
    accounts: pl.DataFrame
    operators: pl.DataFrame
    status: NDArray[np.object_]
    vector_of_row: NDArray[np.int64]


def tables_stage(
    day: Day,
    cfg: RunConfig,
    engine: LocalEngine,
    run_id: str,
    clu: Clustering,
    sk: Skeletons,
    tmpl: Templates,
    camp: Campaigns,
    vec: Embedded,
    history: Path | None = None,
) -> Tables:
    """The output tables; with ``history``, clusters annotated with their matches on earlier days."""
    run = {"run_id": run_id, "day": day.date}
    labels = day.scatter(clu.labels, -1, np.int64)
    status = np.full(day.n, outputs.STATUS_EMPTY, dtype=object)
    status[day.no_timestamp] = outputs.STATUS_NO_TIMESTAMP
    status[day.rows] = np.where(clu.labels >= 0, outputs.STATUS_CLUSTERED, outputs.STATUS_NOISE)
    probability = np.where(clu.clusters.labels >= 0, clu.clusters.probability, 0.0)
    assign = outputs.assignments_frame(
        day.frame,
        labels,
        status,
        day.scatter(probability, 0.0, np.float32),
        day.scatter(sk.coverage, 0.0, np.float32),
        day.norm.truncated,
        camp.decisions,
        day.prompts.extra_columns,
        **run,
    )
    cl = outputs.clusters_frame(day.frame, labels, tmpl, camp.summary, camp.decisions, **run)
    if history is not None:
        hist = annotate_clusters(
            history, vec.model_key, vec.emb.vectors, vec.emb.of_row, clu.labels, cl.height, cfg.history
        )
        cl = cl.join(hist, on="cluster_id", how="left")
    acc = outputs.accounts_frame(day.frame, labels, camp.decisions, **run)
    ops = outputs.operators_frame(camp.decisions, **run)
    return Tables(assign, cl, acc, ops, status, day.scatter(vec.emb.of_row, -1, np.int64))


@dataclass
class Artefacts:
    """What a run has computed so far, by stage (read by :func:`~clusterer.run.manifest.build_manifest`)."""

    cfg: RunConfig
    clock: Any  # the run's Reporter (stage timings)
    engine: LocalEngine
    run_id: str
    history: Path | None
    registry_dir: Path | None
    day: Any = None
    sk: Any = None
    todo: Any = None
    vec: Any = None
    knn: Any = None
    sigs: Any = None
    n_pairs: int = 0
    clustering: Any = None
    tmpl: Any = None
    camp: Any = None
    tables: Any = None
