"""The stages of a run, each a named function ``stage(day, cfg, engine, <earlier artefacts>) -> artefact``.

A stage reads the shared :class:`~clusterer.run.day.Day`, its config and the artefacts of earlier stages; it
never reads the CLI or the environment nor picks its own device (``engine.device``), and it runs its heavy
primitives through ``engine``, which decides where they run. :mod:`clusterer.run.pipeline` orders and times
them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..accel import fastops
from ..campaigns.decisions import Decisions, decide
from ..campaigns.earlier import (
    HITS_SCHEMA,
    Cores,
    Earlier,
    earlier_hits,
    earlier_in_families,
    fragment_cores,
    hit_weights,
)
from ..campaigns.open import OpenFamilies
from ..clustering.families import DayRhythm, DaySenders, Grouping, group_fragments
from ..clustering.hdbscan import Clusters, cluster_edges
from ..clustering.labels import by_first_row, n_labels
from ..clustering.lines import join_flagged_variants, lent_between_campaigns
from ..clustering.refine import (
    MemberTable,
    attach_by_template,
    attach_noise,
    attach_to_families,
    core_share,
    member_table,
    one_text_rows,
    payload_copies,
    propagate_labels,
    rehome_by_template,
    shared_template,
)
from ..clustering.summary import Summary, summarise
from ..clustering.wrappers import wrapper_groups
from ..config import RunConfig
from ..graph.edges import Edges, Pairs, distance, knn_pairs, merge_pairs, score_edges
from ..graph.knn import Knn, expand_knn
from ..graph.lsh import Signatures, signatures
from ..io import outputs
from ..io.ingest import Prompts
from ..store.history import annotate_clusters
from ..store.registry import Naming, Registry, assign_to_known_both, check_dim
from ..text.normalise import text_keys, unspace
from ..text.skeleton import Skeletons, build_skeletons
from ..text.templates import Templates, describe_templates
from ..vectors.encoders import load_encoder
from ..vectors.rows import RowVectors, distinct_rows
from .day import Day, day_span
from .engine import LocalEngine

log = logging.getLogger("clusterer")
# a day's log holds a few stragglers across midnight (clock skew, rotation): more than this share of rows
# outside the run's date is logs of several days, and is warned about
SPAN_WARN_SHARE = 0.01

# two campaigns of the day a window joins on behaviour alone merge only when both were flagged in two earlier
# windows and first flagged at most this many windows apart: one job runs its variants together from its start;
# a second job of the same accounts begun hours later looks ever more like the first as its day so far grows
# (measured: a second job begun at 10:00 joined its campaign's family at 19:00 on the held-out 1M day)
SCHEDULE_MAX_START_GAP = 1


def normalise_stage(prompts: Prompts, cfg: RunConfig, engine: LocalEngine, carried: Carried | None = None) -> Day:
    """Normalise the text and build the shared day object."""
    day = Day.build(prompts, engine.normalise(prompts.frame["text"], cfg.normalise), cfg.ingest)
    if carried is None:
        span = day_span(prompts.frame["timestamp"], day.date)
        if span["rows_outside_day"] > SPAN_WARN_SHARE * day.n:
            log.warning(
                "the logs run from %s to %s: %d of %d rows fall outside %s, the UTC date this run is dated by "
                "(its median row); its registry rows count them all on that date; run one day's logs at a time "
                "(or `clusterer stream`, which dates each window by its own day)",
                span["first"],
                span["last"],
                span["rows_outside_day"],
                day.n,
                day.date,
            )
        return day
    # a stream window is dated by its window (:class:`Carried`), not by its rows' median timestamp
    return dataclasses.replace(day, date=carried.day) if carried.day is not None else day


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
    """The rows' vectors (``emb.vectors`` distinct, ``emb.of_row`` per embedded row), the cache counts, and
    the counts of what was embedded (``texts`` distinct texts; ``templated`` rows as their scaffold view):
    the texts themselves are not kept."""

    emb: RowVectors
    model_key: str
    from_cache: int
    computed: int
    texts: int = 0
    templated: int = 0


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
        check_dim(registry[0], registry[1], encoder.dim, cfg.embed.model, encoder.key)
    emb = engine.embed(todo.texts, todo.keys, encoder, cfg.embed, progress=progress)
    vectors, of_vec = distinct_rows(emb.emb)
    return Embedded(
        RowVectors(vectors, of_vec[todo.inverse]),
        emb.model_key,
        emb.from_cache,
        emb.computed,
        len(todo.texts),
        int(todo.templated.sum()),
    )


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
class EarlierRead:
    """A stream window's matching of its accounts' earlier prompts today: the fragment ``cores``, the ``hits``
    (:func:`~clusterer.campaigns.earlier.earlier_hits`) and the accounts ``read``."""

    cores: Cores
    hits: pl.DataFrame
    read: pl.Series


@dataclass(frozen=True, slots=True)
class Clustering:
    """``clusters``: HDBSCAN's fragments; ``grouping``: the families (``grouping.labels`` per embedded row);
    ``fit``: float32 (m,) share of its fragment's scaffold each row carries; ``shared``: int32 (m,) how many
    of its shingles each row shares with a real part of its fragment (:func:`shared_template`; read in a
    stream window only as :func:`window_shared` says; None when off); ``copies``: bool (m,) rows that are
    copies of what their family's campaign prompts wrap (:func:`payload_copies`)."""

    clusters: Clusters
    grouping: Grouping
    fit: NDArray[np.float32]
    shared: NDArray[np.int32] | None
    copies: NDArray[np.bool_]
    carried: list[str | None] | None = None  # stream window: the campaign each row carries (None: none)
    # stream window: the campaign each row carries or holds one variant's scaffold of (carried_campaigns)
    attach: list[str | None] | None = None
    # stream window: the earlier prompts today that hold a fragment's core (campaigns.earlier.earlier_hits) of
    # the accounts read (those with a row in a fragment before the families took noise), and the cores
    earlier: EarlierRead | None = None
    split: int = 0  # stream window: rows moved out of fragments of several campaigns and no template (split_mixed)
    fragments: NDArray[np.int64] | None = None  # (m,) the fragment of each row that fit, shared and copies read

    @property
    def labels(self) -> NDArray[np.int64]:
        return self.grouping.labels


@dataclass(frozen=True, slots=True)
class Carried:
    """What a window of ``clusterer stream`` carries from the day's earlier windows besides the registry:
    ``keep``, the campaigns flagged earlier in the day; ``anchors``, the carried exemplars (input row → the
    campaign it was flagged with); ``rhythm``, per campaign its flagged prompts per half hour of the day so
    far (float64, 48); ``root``, the registry's campaign → the campaign it resolves to
    (:func:`~clusterer.store.registry.aliases`); ``earlier``, the day's earlier prompts of the window's
    accounts, read by the family grouping's sender evidence and the account-focus and one-shot terms
    (:mod:`~clusterer.campaigns.earlier`); ``scheduled``, the campaigns flagged in at least two earlier windows
    of the day, each with the first window it was flagged in (:func:`variant_pairs`); ``day``, the window's
    day, which dates the run (its carried exemplars, or rows that arrived late, may be of the day before and
    would otherwise date it by their median timestamp); ``open_families``, the families of the window before
    that scored near the threshold, whose exemplars the window holds (:mod:`~clusterer.campaigns.open`)."""

    keep: frozenset[str]
    anchors: dict[int, str]
    rhythm: dict[str, NDArray[np.float64]]
    root: dict[str, str]
    earlier: Earlier | None = None
    scheduled: dict[str, int] = dataclasses.field(default_factory=dict)
    day: dt.date | None = None
    open_families: OpenFamilies | None = None

    def context(self, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Per embedded row (``rows``: its input row), whether it is a carried exemplar — a campaign's or an
        open family's — clustered with the window as context, not output."""
        held = list(self.anchors)
        if self.open_families is not None:
            held += self.open_families.rows["_row"].to_list()
        return np.isin(rows, np.asarray(held, np.int64))


def cluster_stage(
    day: Day,
    cfg: RunConfig,
    engine: LocalEngine,
    edges: Edges,
    sk: Skeletons,
    vec: Embedded,
    registry: Registry | None = None,
    carried: Carried | None = None,
) -> Clustering:
    """HDBSCAN over the edges, noise attached to fragments, fragments grouped into families (in a stream
    window, with the day so far in the rhythm evidence: :class:`~clusterer.clustering.families.DayRhythm`,
    and the campaign each row carries kept for :func:`known_stage`)."""
    c = cfg.cluster
    rhythm, ids, attach = None, None, None
    if registry is not None and carried is not None and carried.keep:
        ids, attach = carried_campaigns(day, cfg, registry, carried)
        rhythm = _carried_rhythm(carried, ids)
    clusters = cluster_edges(day.m, edges.i, edges.j, distance(edges.sim), c)
    attached = attach_noise(clusters.labels, edges.i, edges.j, edges.sim, c.attach_min_sim)
    attached = propagate_labels(
        attached, edges.i, edges.j, edges.sim, c.grow_min_sim, c.grow_min_votes, c.grow_min_share, c.grow_rounds
    )
    attached = attach_by_template(attached, sk.indptr, sk.hashes, c.attach_template, c.attach_template_shingles)
    attached = rehome_by_template(
        attached, sk.indptr, sk.hashes, c.attach_template, c.attach_template_shingles, c.rehome_size_ratio
    )
    attached, split = split_mixed(attached, attach, sk.indptr, sk.hashes, c.attach_template_shingles)
    read, senders = None, None
    if carried is not None and carried.earlier is not None:
        accounts = day.frame["account_id"].gather(day.rows[attached >= 0]).unique()
        cores = fragment_cores(clusters.labels, sk.indptr, sk.hashes)
        read = EarlierRead(cores, _earlier_hits(cores, cfg, carried.earlier, accounts), accounts)
        senders = _day_senders(day, read.hits, carried.earlier)
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
        rhythm=rhythm,
        senders=senders,
    )
    # the fragments' cores as HDBSCAN and the template rules made them, read by the family attachment and the
    # per-prompt rules below: rows attached to a family are scored against them, not part of them (a fragment
    # taking many paraphrased rows would otherwise lose its core)
    members = member_table(attached, sk.indptr, sk.hashes)
    attached, grouping = _attach_to_families(attached, grouping, sk, cfg, members)
    fit = core_share(attached, sk.indptr, sk.hashes, c.attach_template_shingles, members)
    least = c.min_cluster_size if carried is None else cfg.campaign.window_variant_members  # a real part's members
    shared = (  # a window reads them only in families holding a campaign flagged earlier that day (window_shared)
        shared_template(attached, sk.indptr, sk.hashes, cfg.campaign.prompt_variant_share, least, members)
        if carried is None or (cfg.campaign.prompt_shared_in_windows and carried.keep)
        else None
    )
    copy = cfg.campaign.copy_min_contained
    one_text = one_text_rows(attached, sk.indptr, sk.hashes, copy, cfg.skeleton.ngram, members) if copy <= 1 else None
    row_of = members[0]
    del members
    copies = payload_copies(
        attached,
        grouping.labels,
        sk.indptr,
        sk.hashes,
        cfg.campaign.prompt_variant_share,
        c.min_cluster_size,
        copy,
        max_edit=cfg.skeleton.ngram,
        one_text=one_text,
        row_of=row_of,
    )
    done = {"carried": ids, "attach": attach, "earlier": read, "split": split, "fragments": attached}
    return Clustering(clusters, grouping, fit, shared, copies, **done)


def _carried_rhythm(carried: Carried, ids: list[str | None]) -> DayRhythm | None:
    """The day's rhythm so far of the campaign each row carries (``ids``; None: no campaign has one)."""
    if not carried.rhythm:
        return None
    names = sorted(carried.rhythm)
    code = {x: k for k, x in enumerate(names)}
    rows = np.array([code.get(x, -1) for x in ids], np.int64)
    return DayRhythm(rows, np.stack([carried.rhythm[x] for x in names]).astype(np.float64))


def _earlier_hits(cores: Cores, cfg: RunConfig, earlier: Earlier, accounts: pl.Series) -> pl.DataFrame:
    """:func:`~clusterer.campaigns.earlier.earlier_hits` of ``accounts`` by the attach rule."""
    c = cfg.cluster
    return earlier_hits(cores, earlier, accounts, cfg.skeleton.ngram, c.attach_template, c.attach_template_shingles)


def _day_senders(day: Day, hits: pl.DataFrame, earlier: Earlier) -> DaySenders:
    """The earlier prompts that hold a fragment's core (``hits``) as the family grouping's senders, with the
    window's account codes; a prompt holding several fragments' cores counts for the one it holds most of."""
    codes = pl.DataFrame(
        {"account_id": pl.Series(day.account_ids, dtype=pl.String), "code": np.arange(len(day.account_ids))}
    )
    # each earlier prompt counts for the fragment whose core it holds most of (ties: the smaller): one prompt
    # is one sender's prompt of one group, as a batch run puts it in one cluster
    best = hits.sort("e", "share", "fragment", descending=[False, True, False]).unique("e", keep="first")
    if "held" in earlier.prompts.columns:  # an open family's exemplar the window holds: a row of it already
        best = best.filter(~pl.col("e").is_in(np.flatnonzero(earlier.prompts["held"].to_numpy())))
    h = hit_weights(best, earlier).join(codes, on="account_id")
    # the rhythm reads only the accounts whose whole day so far was read: the latest few prompts of a busy
    # account are its last hours, not its schedule (measured: a second job begun at 10:00 then looked like its
    # campaign by 19:00 on the held-out 1M day)
    half = pl.when(pl.col("w") == 1.0).then((pl.col("timestamp").dt.epoch("s") % 86_400) // 1_800).otherwise(-1)
    half = h.select(half.alias("half"))["half"]
    return DaySenders(
        h["e"].to_numpy().astype(np.int64),
        h["fragment"].to_numpy().astype(np.int64),
        h["code"].to_numpy().astype(np.int64),
        h["w"].to_numpy().astype(np.float64),
        half.to_numpy().astype(np.int64),
    )


def _attach_to_families(
    fragments: NDArray[np.int64], grouping: Grouping, sk: Skeletons, cfg: RunConfig, members: MemberTable
) -> tuple[NDArray[np.int64], Grouping]:
    """Noise that carries a family's scaffold joins it (:func:`~clusterer.clustering.refine.attach_to_families`),
    with the fragment and template group it is given; ``members``: :func:`member_table` of ``fragments``."""
    c = cfg.cluster
    frag, fam = attach_to_families(
        fragments,
        grouping.labels,
        sk.indptr,
        sk.hashes,
        cfg.campaign.prompt_variant_share,
        c.min_cluster_size,
        c.attach_template_shingles,
        c.attach_family,
        members,
    )
    if fam is grouping.labels:
        return fragments, grouping
    groups = grouping.template_groups
    if groups is not None:
        group_of = np.full(n_labels(fragments), -1, np.int64)
        group_of[fragments[fragments >= 0]] = groups[fragments >= 0]
        groups = np.where(frag >= 0, group_of[np.maximum(frag, 0)], -1)
    fam, order = by_first_row(fam)  # families stay numbered by their first row (an attached row may be first)
    language = [grouping.language[o] for o in order.tolist()]
    return frag, dataclasses.replace(grouping, labels=fam, template_groups=groups, language=language)


def decisions_stage(
    a: Artefacts, cfg: RunConfig, engine: LocalEngine, registry: Registry | None, carried: Carried | None
) -> tuple[Clustering, Templates, Campaigns]:
    """The campaigns flagged earlier in the day (a stream window: :func:`known_stage`), the decisions
    (:func:`campaigns_stage`) and, in a batch run, flagged variants joined (:func:`variants_stage`) and short
    wrappers grouped (:func:`wrappers_stage`; in a stream window too with ``[cluster] wrappers_in_windows``)."""
    a.clustering, known = known_stage(a.day, cfg, a.clustering, registry, carried)
    earlier = carried.earlier if carried is not None else None
    window = carried is not None
    opened = carried.open_families if carried is not None else None
    a.camp = campaigns_stage(
        a.day,
        cfg,
        engine,
        a.clustering,
        a.tmpl,
        a.vec,
        registry,
        known,
        a.sk,
        earlier,
        window,
        opened,
        carried.context(a.day.rows) if carried is not None else None,
    )
    if carried is None:
        a.clustering, a.tmpl, a.camp = variants_stage(a, cfg, engine, registry)
    elif not cfg.cluster.wrappers_in_windows:
        return a.clustering, a.tmpl, a.camp
    return wrappers_stage(a, cfg, engine, registry, carried, known)


def variants_stage(
    a: Artefacts, cfg: RunConfig, engine: LocalEngine, registry: Registry | None
) -> tuple[Clustering, Templates, Campaigns]:
    """A batch run's flagged families that lend each other scaffold lines are one campaign's variants
    (:func:`~clusterer.clustering.lines.join_flagged_variants`): the clustering with them joined (families
    numbered by first row, each keeping the language of the family holding its first row), described and
    decided again; ``a``'s clustering, templates and campaigns as they are when nothing joins (or ``[cluster]
    join_variants`` is false). Everything a prompt's flag reads besides its
    family's flag — its fragment's core, the copies of what its family's prompts wrap, the ordinary parts the
    first decision found — stays as the family stages left it, and a join that would change any prompt's flag
    is not kept."""
    c, clu, camp, sk = cfg.cluster, a.clustering, a.camp, a.sk
    unchanged = (clu, a.tmpl, camp)
    groups = clu.grouping.template_groups
    if not c.join_variants or groups is None or not c.merge:
        return unchanged
    k = n_labels(clu.labels)
    flagged = np.zeros(k, bool)
    cl = camp.decisions.clusters.filter(pl.col("flagged") & (pl.col("cluster_id") >= 0))
    flagged[cl["cluster_id"].to_numpy()] = True
    joined, merges = join_flagged_variants(clu.labels, groups, flagged, sk, c.family_min_sim)
    if merges == 0:
        return unchanged
    fam, order = by_first_row(np.where(clu.labels >= 0, joined[np.maximum(clu.labels, 0)], -1))
    language = [clu.grouping.language[o] for o in order.tolist()]
    grouping = dataclasses.replace(
        clu.grouping, labels=fam, families=n_labels(fam), language=language, line_joins=merges
    )
    joined_clu = dataclasses.replace(clu, grouping=grouping)
    tmpl = templates_stage(a.day, cfg, engine, joined_clu, sk, a.sigs)
    # the ordinary parts as the first decision found them: the joined families' sender sums are not what
    # made their parts ordinary or not
    joined_camp = campaigns_stage(
        a.day, cfg, engine, joined_clu, tmpl, a.vec, registry, ordinary=camp.decisions.ordinary
    )
    # the joined families are scored again, and so are the others (a family's focus reads its siblings):
    # should any prompt's flag differ, the join is not kept — it names variants, it does not decide
    if not np.array_equal(joined_camp.decisions.prompt_flagged, camp.decisions.prompt_flagged):
        return unchanged
    return joined_clu, tmpl, joined_camp


def wrappers_stage(
    a: Artefacts,
    cfg: RunConfig,
    engine: LocalEngine,
    registry: Registry | None,
    carried: Carried | None = None,
    known: Known | None = None,
) -> tuple[Clustering, Templates, Campaigns]:
    """A run's noise and unflagged families' prompts grouped by the short wrapper at their edge
    (:func:`~clusterer.clustering.wrappers.wrapper_groups`), each group a new family, or a part of the flagged
    family that holds its line in half its members when a third of the group comes from that family's senders
    (the family keeps its campaign ID: :func:`_owners_keep_keys`),
    decided with the rest; the groups the decision flags are kept (the others go back where they were and the
    families are decided again without them). The run's other prompts keep their flags and campaign IDs, and
    the other families their flags: should any differ, nothing is kept (a group adds campaigns, it does not
    re-decide others). In a stream window (``carried``, ``known``: :func:`known_stage`) the carried exemplars
    join no group and the groups are decided as the window's families are (:func:`_decider`). ``a``'s
    clustering, templates and campaigns as they are when no group is kept (or ``[cluster]
    wrapper_edge_tokens`` is 0)."""
    c, clu, camp, day = cfg.cluster, a.clustering, a.camp, a.day
    unchanged = (clu, a.tmpl, camp)
    if c.wrapper_edge_tokens == 0:
        return unchanged
    t0 = time.perf_counter()
    flagged = camp.decisions.clusters.filter(pl.col("flagged"))["cluster_id"].to_numpy()
    own = [a.tmpl.frequent[f] for f in flagged.tolist()]  # a group on a flagged family's own line joins it
    owners = pl.DataFrame(
        {
            "h": np.concatenate([np.zeros(0, np.uint64), *own]),
            "owner": np.repeat(flagged.astype(np.int64), [len(x) for x in own]),
        }
    )
    eligible = ~np.isin(clu.labels, flagged)  # noise and the members of families not flagged
    context = carried.context(day.rows) if carried is not None else None
    if context is not None:
        eligible &= ~context  # a carried exemplar is context, not the window's own prompt
    decide = _decider(a, cfg, engine, registry, carried, known, context)
    groups, owned = wrapper_groups(
        clu.labels,
        eligible,
        day.texts,
        a.sk,
        day.accounts[day.rows],
        day.norm.key[day.rows],
        cfg.skeleton.ngram,
        c.wrapper_edge_tokens,
        c.min_cluster_size,
        owners=owners,
    )
    formed = len(owned)
    for _ in range(3):  # all groups, then (when the decision left some) only those it flagged
        if groups.max(initial=-1) < 0:
            if formed:
                log.info("wrapper groups: %d formed, none flagged (%.1f s)", formed, time.perf_counter() - t0)
            return unchanged
        grouped, order = _with_groups(clu, groups, owned, cfg)
        tmpl = _owners_keep_keys(templates_stage(day, cfg, engine, grouped, a.sk, a.sigs), a.tmpl, order, owned)
        decided = decide(grouped, tmpl, order)
        now = decided.decisions.clusters.filter(pl.col("flagged"))["cluster_id"].to_numpy()
        kept = np.unique(groups[(groups >= 0) & np.isin(grouped.labels, now)])
        if len(kept) == n_labels(groups):
            break
        groups, owned = np.where(np.isin(groups, kept), np.searchsorted(kept, groups), -1), owned[kept]
    else:  # the groups kept lost their flag once the others were gone: none is kept
        return unchanged
    changed = _others_changed(camp, decided, day, clu, grouped, groups)
    if changed:
        log.info("wrapper groups not kept: %s", changed)
        return unchanged
    took, joined = time.perf_counter() - t0, int((owned >= 0).sum())
    rows = int((groups >= 0).sum())
    log.info(
        "wrapper groups: %d formed, %d kept (%d joined a flagged family), %d rows (%.1f s)",
        formed,
        len(owned),
        joined,
        rows,
        took,
    )
    return grouped, tmpl, decided


def _decider(
    a: Artefacts,
    cfg: RunConfig,
    engine: LocalEngine,
    registry: Registry | None,
    carried: Carried | None,
    known: Known | None,
    context: NDArray[np.bool_] | None,
) -> Callable[[Clustering, Templates, NDArray[np.int64]], Campaigns]:
    """How :func:`wrappers_stage` decides a clustering with its groups: as the run decided its families, with
    the ordinary parts the first decision found. In a stream window, with what the day's earlier windows
    learned: each family holds the campaigns it held before the groups (``order``: each family's number
    before; a group is a new family and holds none; ``context``: :meth:`Carried.context` of the window's rows)."""
    day, ordinary = a.day, a.camp.decisions.ordinary

    def decide(grouped: Clustering, tmpl: Templates, order: NDArray[np.int64]) -> Campaigns:
        if carried is None:
            return campaigns_stage(day, cfg, engine, grouped, tmpl, a.vec, registry, ordinary=ordinary)
        again = None
        if known is not None:
            held = {j: known.held[o] for j, o in enumerate(order.tolist()) if o in known.held}
            again = dataclasses.replace(known, held=held)
        window = (again, a.sk, carried.earlier, True, carried.open_families, context)
        return campaigns_stage(day, cfg, engine, grouped, tmpl, a.vec, registry, *window, ordinary)

    return decide


def _others_changed(
    camp: Campaigns, decided: Campaigns, day: Day, clu: Clustering, grouped: Clustering, groups: NDArray[np.int64]
) -> str:
    """What the wrapper groups changed outside themselves ('' when nothing): every family outside them keeps
    its flag, every prompt its campaign ID, and no prompt loses its flag (a prompt may gain it: its account now
    sends more of its prompts to flagged families)."""
    outside = day.scatter(groups < 0, True, bool)
    before, now = camp.decisions.prompt_flagged, decided.decisions.prompt_flagged
    lost = int((before & ~now)[outside].sum())
    moved = int((_in_flagged(camp, day, clu) != _in_flagged(decided, day, grouped))[outside].sum())
    was = pl.Series(camp.decisions.prompt_campaign, dtype=pl.String)
    is_now = pl.Series(decided.decisions.prompt_campaign, dtype=pl.String)
    renamed = int((was.is_not_null() & was.ne_missing(is_now) & pl.Series(outside)).sum())
    if not (lost or moved or renamed):
        return ""
    return f"{lost} other prompts unflagged, {moved} in or out of flagged families, {renamed} renamed"


def _in_flagged(camp: Campaigns, day: Day, clu: Clustering) -> NDArray[np.bool_]:
    """bool (n,): the input rows in a family the decision flagged."""
    flagged = camp.decisions.clusters.filter(pl.col("flagged"))["cluster_id"].to_numpy()
    return day.scatter(np.isin(clu.labels, flagged), False, bool)


def _owners_keep_keys(
    tmpl: Templates, before: Templates, order: NDArray[np.int64], owned: NDArray[np.int64]
) -> Templates:
    """``tmpl`` with each family that took a group on its own line (``owned``) keeping its template key from
    ``before`` (``order``: each family's number before the groups), so its campaign ID stays: the left-over
    prompts of its wrapper change which shingles half its members hold, not which campaign it is."""
    keys, owners = list(tmpl.key), set(owned.tolist())
    taken = set(keys)
    for j, old in enumerate(order.tolist()):
        if old in owners and before.key[old] not in taken:
            taken.discard(keys[j])
            keys[j] = before.key[old]
            taken.add(keys[j])
    return dataclasses.replace(tmpl, key=keys)


def _with_groups(
    clu: Clustering, groups: NDArray[np.int64], owned: NDArray[np.int64], cfg: RunConfig
) -> tuple[Clustering, NDArray[np.int64]]:
    """``clu`` with each wrapper group (``groups`` ≥ 0: noise, or rows taken out of families not flagged) a
    fragment of its own, in the family that owns its line (``owned[g]`` ≥ 0) or as a new family: families
    renumbered by first row. Its members carry its scaffold (``fit`` 1) and share it (``shared`` the prompt
    rule's minimum: the wrapper is their edge line, not a payload a few members carry) and are no copies of a
    payload. Also returns each family's number before (≥ the old count: a new family)."""
    member = groups >= 0
    g = clu.grouping
    k, n_groups = n_labels(g.labels), len(owned)
    new = owned < 0
    family_of = np.where(new, k + np.cumsum(new) - 1, owned)  # per group: its family before renumbering
    fam, order = by_first_row(np.where(member, family_of[np.maximum(groups, 0)], g.labels))
    language = [g.language[o] if o < k else "" for o in order.tolist()]
    frag = clu.fragments if clu.fragments is not None else g.labels
    frag = np.where(member, n_labels(frag) + groups, frag)
    tg = g.template_groups
    grouping = dataclasses.replace(
        g,
        labels=fam,
        fragments=g.fragments + n_groups,
        families=n_labels(fam),
        language=language,
        template_groups=np.where(member, n_labels(tg) + groups, tg) if tg is not None else None,
        group_language=(g.group_language or []) + [""] * n_groups if g.group_language is not None else None,
        wrapper_groups=n_groups,
        wrapper_joined=int((owned >= 0).sum()),
        wrapper_rows=int(member.sum()),
    )
    # a group's rows are not HDBSCAN members of it (membership 0, as rows attached by the template rules)
    clusters = dataclasses.replace(clu.clusters, labels=np.where(member, -1, clu.clusters.labels))
    least = np.int32(cfg.campaign.prompt_min_shared)
    shared = np.where(member, np.maximum(clu.shared, least), clu.shared) if clu.shared is not None else None
    grouped = dataclasses.replace(
        clu,
        clusters=clusters,
        grouping=grouping,
        fit=np.where(member, np.float32(1.0), clu.fit).astype(np.float32),
        shared=shared.astype(np.int32) if shared is not None else None,
        copies=np.where(member, False, clu.copies),
        fragments=frag,
    )
    return grouped, order


def templates_stage(
    day: Day, cfg: RunConfig, engine: LocalEngine, clu: Clustering, sk: Skeletons, sigs: Signatures
) -> Templates:
    return describe_templates(clu.labels, day.texts, sk, sigs, cfg.skeleton, cfg.seed, clu.grouping.template_groups)


@dataclass(frozen=True, slots=True)
class Campaigns:
    """The campaign decisions, the families' vector summary, and the registry's naming (None without one)."""

    decisions: Decisions
    summary: Summary
    naming: Naming | KeepNames | None
    known: Known | None = None


def _holders(df: pl.DataFrame, min_share: float, min_count: int) -> dict[int, list[str]]:
    """Per cluster the campaigns it holds: ``df`` has per row (prompt or carried exemplar) its cluster ``c``
    (-1 noise), the campaign ``id`` it carries (null: none) and its cluster's denominator ``n``. A campaign
    is held when it has ≥ ``min_count`` rows and ≥ ``min_share`` of ``n``, and a cluster holds its held
    campaigns when together they are more than half of ``n``: cluster → their IDs, most rows first."""
    per = (
        df.filter((pl.col("c") >= 0) & pl.col("id").is_not_null())
        .group_by("c", "id")
        .agg(pl.len().alias("k"), pl.col("n").first())
        .filter((pl.col("k") >= min_count) & (pl.col("k") >= min_share * pl.col("n")))
        .with_columns(pl.col("k").sum().over("c").alias("held"))
        .filter(2 * pl.col("held") > pl.col("n"))
        .sort(["c", "k", "id"], descending=[False, True, False])
        .group_by("c", maintain_order=True)
        .agg(pl.col("id"))
    )
    return {int(c): list(ids) for c, ids in zip(per["c"], per["id"], strict=True)}


def carried_campaigns(
    day: Day, cfg: RunConfig, registry: Registry, carried: Carried
) -> tuple[list[str | None], list[str | None]]:
    """The campaign of ``carried.keep`` (flagged earlier in the day) each embedded row carries (None: none): a
    carried exemplar (``carried.anchors``: input row → the campaign it was flagged with) carries its
    campaign, any other row the campaign whose scaffold set it holds by the ``assign`` rule (≥
    ``assign_min_shingles`` of the campaign's scaffold shingles and ≥ ``assign_min_containment`` of the set);
    a merged campaign counts as the one it was merged into. And the same with a row that carries none taking
    the campaign one of whose variants' scaffolds it holds by that rule (``scaffold_variants``): it may only
    join a cluster holding that campaign (:func:`attach_known`), never name one — a window's family can
    group two jobs of the same accounts, and the registry then keeps the second job's scaffold among the
    first's variants."""
    from ..text.skeleton import shingle_sets

    known = Registry(
        campaigns=registry.campaigns.filter(pl.col("campaign_id").is_in(sorted(carried.keep))), daily=registry.daily
    )
    ids: list[str | None] = [None] * len(day.rows)
    attach: list[str | None] = [None] * len(day.rows)
    if known.campaigns.height and len(day.rows):
        indptr, hashes = shingle_sets(day.texts, cfg.skeleton.ngram)
        rc = cfg.registry
        ids, attach = assign_to_known_both(known, indptr, hashes, rc.assign_min_containment, rc.assign_min_shingles)
    if carried.anchors:
        row_of = {int(r): e for e, r in enumerate(day.rows.tolist())}
        for r, cid in carried.anchors.items():
            if r in row_of:
                ids[row_of[r]] = carried.root.get(cid, cid)
    return ids, [x if x is not None else a for x, a in zip(ids, attach, strict=True)]


def variant_owners(clu: Clustering, tmpl: Templates) -> list[list[str | None]] | None:
    """Per family and each of its variants (``tmpl.variant_groups``), the campaign at least half of the
    variant's rows in the family carry (:func:`carried_campaigns`; None: none). A stream window keeps a
    variant's scaffold in the registry only as the variant of the campaign its rows already carry: a family
    can group two jobs of the same accounts, and a variant kept under the other job's ID would carry that ID
    into later windows. None outside a stream window (every variant of a family is its campaign's)."""
    tg = clu.grouping.template_groups
    if clu.carried is None or tg is None:
        return None
    df = pl.DataFrame({"c": clu.labels, "g": tg, "id": pl.Series(clu.carried, dtype=pl.String)}).filter(
        pl.col("c") >= 0
    )
    top = (
        df.group_by("c", "g", "id")
        .len()
        .with_columns(pl.col("len").sum().over("c", "g").alias("n"))
        .filter(pl.col("id").is_not_null() & (2 * pl.col("len") >= pl.col("n")))
        .sort("c", "g", "len", "id", descending=[False, False, True, False])
        .unique(["c", "g"], keep="first")
    )
    owner = {(int(c), int(g)): i for c, g, i in zip(top["c"], top["g"], top["id"], strict=True)}
    return [[owner.get((c, g)) for g in groups] for c, groups in enumerate(tmpl.variant_groups)]


def held_campaigns(labels: NDArray[np.int64], ids: list[str | None], min_share: float) -> dict[int, list[str]]:
    """The campaigns each cluster holds (``labels``: the cluster of each embedded row; ``ids``: the campaign
    each carries, :func:`carried_campaigns`): those carried by ≥ 3 and ≥ ``min_share`` of its rows when
    together they are most of its rows (:func:`_holders`). Several clusters may hold one campaign (a
    campaign split into fragments in a window keeps its one ID); exemplars that make up a small part of a
    cluster of new prompts (another job of the same accounts) do not name it."""
    df = pl.DataFrame({"c": labels, "id": pl.Series(ids, dtype=pl.String)})
    return _holders(df.with_columns(pl.len().over("c").alias("n")), min_share, 3)


def attach_known(labels: NDArray[np.int64], ids: list[str | None], held: dict[int, list[str]]) -> NDArray[np.int64]:
    """Rows no cluster took (-1) that carry a campaign a cluster holds (``ids``: per row the campaign it
    carries or holds a variant's scaffold of, the second list of :func:`carried_campaigns`; ``held``:
    :func:`held_campaigns`) join that cluster (the largest, when several hold it; ties: the smaller cluster
    number)."""
    out = labels.copy()
    noise = np.flatnonzero(labels < 0)
    if not held or len(noise) == 0:
        return out
    size = np.bincount(labels[labels >= 0], minlength=max(held) + 1)
    owner: dict[str, int] = {}
    for c in sorted(held):
        for x in held[c]:
            if x not in owner or size[c] > size[owner[x]]:
                owner[x] = c
    for r in noise.tolist():
        x = ids[r]
        if x is not None and x in owner:
            out[r] = owner[x]
    return out


def split_mixed(
    labels: NDArray[np.int64],
    ids: list[str | None] | None,
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_shingles: int,
    min_rows: int = 3,
) -> tuple[NDArray[np.int64], int]:
    """Fragments of a stream window that hold no template of their own but several campaigns flagged earlier
    that day, split by campaign (``labels``: fragment per row, -1 noise; ``ids``: per row the campaign it
    carries or holds a variant's scaffold of, the second list of :func:`carried_campaigns`).

    Several campaigns of one operator drawing their payloads from one pool in the same hour are linked by
    their shared payloads: inside a window, where each has a hundred-odd prompts, HDBSCAN can take a chain of
    them as one fragment, which then reads as one new campaign (the blind 100k day's window 14: 146 rows of
    the rubric, extraction and memo campaigns and a few ordinary prompts, flagged under a fourth ID). Over the
    whole day each campaign's scaffold is dense enough to stand apart. Such a fragment has no core — no
    skeleton shingle held by half its members (fewer than ``min_shingles``: :func:`~..clustering.refine._cores`)
    — and its rows carry two or more campaigns, each by ≥ ``min_rows`` rows, together most of them. The rows
    of each such campaign make a fragment of their own (numbered after the others), which the family
    grouping joins to the campaign's other fragments as it joins any variant: no row is put into another
    fragment, whose core it would thin. Rows carrying none, or a campaign by fewer rows, stay; when none
    would, the campaign with the most rows stays (no fragment is emptied, and every fragment keeps its
    number). A fragment of one campaign, or with a core, is left as it is. Returns the labels and how many
    rows moved (``ids`` None, outside a stream window: the labels as they are)."""
    from ..clustering.refine import _cores

    k = n_labels(labels)
    if ids is None or k == 0 or not any(x is not None for x in ids):
        return labels, 0
    df = pl.DataFrame({"r": np.arange(len(labels)), "c": labels, "id": pl.Series(ids, dtype=pl.String)}).filter(
        pl.col("c") >= 0
    )
    size = df.group_by("c").len().rename({"len": "n"})
    per = df.filter(pl.col("id").is_not_null()).group_by("c", "id").len().join(size, on="c")
    mixed = (
        per.filter(pl.col("len") >= min_rows)
        .group_by("c")
        .agg(pl.len().alias("ids"), pl.col("len").sum().alias("held"), pl.col("n").first())
        .filter((pl.col("ids") >= 2) & (2 * pl.col("held") > pl.col("n")))
    )
    if mixed.height == 0:  # most windows: the cores below are read only for fragments that hold several
        return labels, 0
    cand = np.isin(labels, mixed["c"].to_numpy())
    _, core_size, _, _ = _cores(np.where(cand, labels, -1), sk_indptr, sk_hashes, min_shingles)
    n_of = {c: n for c, n in zip(mixed["c"].to_list(), mixed["n"].to_list(), strict=True) if core_size[c] == 0}
    if not n_of:
        return labels, 0
    out, moved = labels.copy(), 0
    nxt = k  # new fragments are numbered after HDBSCAN's: the earlier prompts' hits read fragments by number
    moving = df.filter(pl.col("c").is_in(list(n_of)) & pl.col("id").is_not_null())
    groups = moving.group_by("c", "id").agg(pl.col("r").sort()).sort("c", "id")
    for (c,), part in groups.group_by(["c"], maintain_order=True):
        go = [np.asarray(rows, np.int64) for rows in part["r"] if len(rows) >= min_rows]
        if sum(len(at) for at in go) == n_of[c]:
            # every row would leave: the campaign with the most rows stays (no fragment is emptied)
            go.pop(max(range(len(go)), key=lambda e: len(go[e])))
        for at in go:
            out[at], nxt, moved = nxt, nxt + 1, moved + len(at)
    return out, moved


@dataclass(frozen=True, slots=True)
class Known:
    """What a ``clusterer stream`` window takes from the day's earlier windows: per cluster the campaigns it
    holds (:func:`held_campaigns`), today's prompts per campaign so far (its merged campaigns' included), how
    many rows no cluster took joined a cluster holding their campaign, and the pairs of held campaigns the
    window joined as variants (:func:`variant_pairs`)."""

    held: dict[int, list[str]]
    weight: dict[str, float]
    attached: int
    mergeable: frozenset[tuple[str, str]] = frozenset()


def known_stage(
    day: Day, cfg: RunConfig, clu: Clustering, registry: Registry | None, carried: Carried | None
) -> tuple[Clustering, Known | None]:
    """In a ``clusterer stream`` window (``carried``: :class:`Carried`): the clusters holding campaigns
    flagged earlier in the day by their scaffold or by the carried exemplars, and the window's clustering
    with the rows no cluster took that carry such a campaign's scaffold, or one of its variants' scaffolds,
    joined to the cluster holding it (a variant a window has too few prompts of to cluster, the batch run of
    the day clusters). Elsewhere:
    ``clu`` as it is, and None."""
    if registry is None or carried is None or not carried.keep:
        return clu, None
    root, ids = carried.root, clu.carried
    assert ids is not None, "cluster_stage keeps the campaign each row carries whenever known_stage runs"
    held = held_campaigns(clu.labels, ids, cfg.registry.merge_min_share)
    today = registry.daily.filter(pl.col("day") == day.date) if day.date else registry.daily.clear()
    weight: dict[str, float] = {}
    for cid, n in zip(today["campaign_id"], today["prompts"], strict=True):
        weight[root.get(cid, cid)] = weight.get(root.get(cid, cid), 0.0) + float(n)
    pairs = variant_pairs(clu.grouping, ids, held, carried.scheduled)
    labels = attach_known(clu.labels, clu.attach if clu.attach is not None else ids, held)
    attached = int(((labels >= 0) & (clu.labels < 0)).sum())
    if attached:
        clu = dataclasses.replace(clu, grouping=dataclasses.replace(clu.grouping, labels=labels))
    return clu, Known(held, weight, attached, pairs)


def variant_pairs(
    grouping: Grouping,
    ids: list[str | None],
    held: dict[int, list[str]],
    scheduled: dict[str, int] | None = None,
) -> frozenset[tuple[str, str]]:
    """The pairs (a < b) of campaigns held by one cluster that the window joined as variants of one template:
    the template groups (stage 1 of the family grouping) most of their rows sit in are one group (template
    evidence), or are written in different languages (a translated variant, joined on behaviour), or both
    campaigns are ``scheduled`` (flagged in at least two earlier windows of the day: campaign → the first) and
    were first flagged at most ``SCHEDULE_MAX_START_GAP`` windows apart (one job runs its variants together;
    a second job of the same accounts started hours later looks ever more like the first as its day so far
    grows, but never starts with it). Two campaigns in one
    language that only behaviour joined (shared senders and payloads), one not yet flagged in two windows, are
    not merged: inside one window a second job of the same accounts looks like that too, and an hour holds no
    schedule to tell them apart (the batch run of the day has one). Whatever the evidence, the cluster must
    hold most of each campaign's rows in the window (its prompts and exemplars): a merge is for the rest of
    the day, and two campaigns that draw payloads from one pool meet in a small family of shared payloads
    while most of their rows sit apart."""
    tg, lang = grouping.template_groups, grouping.group_language
    multi = {c: h for c, h in held.items() if len(h) > 1}
    if tg is None or lang is None or not multi:
        return frozenset()
    df = pl.DataFrame({"c": grouping.labels, "g": tg, "id": pl.Series(ids, dtype=pl.String)})
    rows = df.filter(pl.col("id").is_not_null()).group_by("c", "id").len()
    rows = rows.with_columns(pl.col("len").sum().over("id").alias("all"))
    bulk = {(int(c), i) for c, i, k, n in rows.iter_rows() if 2 * k > n}
    main = (
        df.filter(pl.col("c").is_in(list(multi)) & pl.col("id").is_not_null() & (pl.col("g") >= 0))
        .group_by("c", "id", "g")
        .len()
        .sort(["c", "id", "len", "g"], descending=[False, False, True, False])
        .group_by("c", "id", maintain_order=True)
        .first()
    )
    group = {(int(c), i): int(g) for c, i, g in zip(main["c"], main["id"], main["g"], strict=True)}

    def together(x: str, y: str) -> bool:
        return (
            scheduled is not None
            and x in scheduled
            and y in scheduled
            and (abs(scheduled[x] - scheduled[y]) <= SCHEDULE_MAX_START_GAP)
        )

    out = set()
    for c, h in multi.items():
        for x in h:
            for y in h:
                gx, gy = group.get((c, x)), group.get((c, y))
                if x >= y or gx is None or gy is None or (c, x) not in bulk or (c, y) not in bulk:
                    continue
                if gx == gy or (lang[gx] != "" and lang[gy] != "" and lang[gx] != lang[gy]) or together(x, y):
                    out.add((x, y))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class LineEvidence:
    """What :class:`KeepNames` reads to name as one the flagged campaigns of a stream window that lend each
    other scaffold lines (:func:`~clusterer.clustering.lines.lent_between_campaigns`): the family and the
    template group of each embedded row, their skeletons, and the family stage's ``family_min_sim``."""

    families: NDArray[np.int64]
    groups: NDArray[np.int64]
    sk: Skeletons
    min_sim: float


class KeepNames:
    """A registry naming for a window of ``clusterer stream``: a flagged cluster holding campaigns of earlier
    windows (``held``: cluster → their IDs) takes one ID; the other flagged clusters are named as the registry
    names them. When flagged clusters hold several campaigns (a window clustered as one family what earlier
    windows saw apart, e.g. a campaign's English and French variants), those campaigns the window joined as
    variants (``known.mergeable``: :func:`variant_pairs`) are merged: each connected group takes the ID of
    its campaign with the most prompts so far today (``weight``; ties: the smaller ID), and the others
    (``merges``) are recorded ``merged_into`` it in the registry the stream carries
    (:func:`~clusterer.store.registry.apply_merges`), so every later match of them carries that ID. A cluster
    holding campaigns that are not merged takes the ID of the one most of its rows carry. With ``lines``
    (``[cluster] join_variants``), the window's flagged campaigns whose families lend each other scaffold
    lines (:func:`~clusterer.clustering.lines.lent_between_campaigns`: re-worded variants from their own
    account pools, which the batch run of the day joins in :func:`variants_stage`) are named as one and
    merged the same way (``line_merges``); no family is joined and no flag changes."""

    def __init__(self, naming: Naming, known: Known, lines: LineEvidence | None = None) -> None:
        self.naming, self.held, self.weight, self.mergeable = naming, known.held, known.weight, known.mergeable
        self.lines = lines
        self.merges: dict[str, str] = {}
        self.line_merges: dict[str, str] = {}
        self.line_merged: frozenset[str] = frozenset()  # the known campaigns of ``merges`` merged by lines

    def __call__(self, cids: list[int], proposed: list[str]) -> dict[int, str]:
        ids = self.naming(cids, proposed)
        # complete linkage: two groups of campaigns merge only when every pair across them was joined as
        # variants (one translated variant does not chain a second job of the same accounts into a campaign)
        comp: dict[str, frozenset[str]] = {}
        for c in cids:
            g = self.held.get(c, [])
            for x in g:
                comp.setdefault(x, frozenset({x}))
            for other in g[1:]:
                a, b = comp[g[0]], comp[other]
                if a != b and all((min(x, y), max(x, y)) in self.mergeable for x in a for y in b):
                    for x in a | b:
                        comp[x] = a | b
        members = {min(m): sorted(m) for m in comp.values()}
        canon: dict[str, str] = {}
        for ms in members.values():
            best = min(ms, key=lambda m: (-self.weight.get(m, 0.0), m))
            canon.update({m: best for m in ms})
        out = {c: canon[self.held[c][0]] if c in self.held else canon.get(i, i) for c, i in ids.items()}
        if self.lines is not None:
            out = self._join_lines(out, canon)
        self.merges = {m: c for m, c in canon.items() if m != c}
        return out

    def _join_lines(self, out: dict[int, str], canon: dict[str, str]) -> dict[int, str]:
        """``out`` (flagged cluster → campaign) with the campaigns that lend each other scaffold lines named as
        one, the one with the most prompts today keeping its ID (its merged campaigns' counted; ties: a known
        campaign, then the smaller ID; ``line_merges``); ``canon`` updated with the
        merges of the campaigns the registry knows (a campaign new in this window is never written)."""
        ln = self.lines
        assert ln is not None
        self.line_merges = {}
        reg = getattr(self.naming, "reg", None)
        known = set(self.weight) | {x for h in self.held.values() for x in h}
        known |= set(reg.campaigns["campaign_id"].to_list()) if reg is not None else set()
        # a campaign's prompts today, with those of the campaigns this window merged into it
        total: dict[str, float] = {}
        for m, w in self.weight.items():
            total[canon.get(m, m)] = total.get(canon.get(m, m), 0.0) + w
        for part in lent_between_campaigns(ln.families, ln.groups, out, ln.sk, ln.min_sim):
            best = min(part, key=lambda m: (-total.get(m, 0.0), m not in known, m))
            self.line_merges.update({m: best for m in part if m != best})
        for m, c in self.line_merges.items():
            canon.update({x: c for x, y in canon.items() if y == m})
            if m in known:
                canon[m] = c
        self.line_merged = frozenset(self.line_merges) & known
        return {c: self.line_merges.get(i, i) for c, i in out.items()}

    def updated(self, clusters: pl.DataFrame, day: Any) -> Registry:
        return self.naming.updated(clusters, day)


def _day_so_far(
    day: Day, cfg: RunConfig, clu: Clustering, labels: NDArray[np.int64], sk: Skeletons, earlier: Earlier
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A stream window's day so far for the decisions: the earlier prompts of its families' accounts
    matched to its families (:func:`~clusterer.campaigns.earlier.earlier_in_families`), and each account's
    earlier prompts today."""
    pairs = (
        pl.DataFrame({"cluster_id": labels, "account_id": day.frame["account_id"]})
        .filter(pl.col("cluster_id") >= 0)
        .unique()
    )
    empty = pl.Series([], dtype=pl.String)  # a window clustered without the day so far reads every account here
    done = clu.earlier or EarlierRead(
        fragment_cores(clu.clusters.labels, sk.indptr, sk.hashes), pl.DataFrame(schema=HITS_SCHEMA), empty
    )
    # accounts of the families not read before the grouping (rows the families took from the noise), matched
    # to the cores the grouping's were
    rest = pairs.select(pl.col("account_id").cast(pl.String)).unique()
    rest = rest.filter(~pl.col("account_id").is_in(done.read.cast(pl.String).implode()))["account_id"]
    hits = done.hits
    if rest.len():
        hits = pl.concat([hits, _earlier_hits(done.cores, cfg, earlier, rest)])
    matched = earlier_in_families(hits, clu.clusters.labels, clu.labels, pairs, earlier)
    return matched, earlier.totals


def campaigns_stage(
    day: Day,
    cfg: RunConfig,
    engine: LocalEngine,
    clu: Clustering,
    tmpl: Templates,
    vec: Embedded,
    registry: Registry | None = None,
    known: Known | None = None,
    sk: Skeletons | None = None,
    earlier: Earlier | None = None,
    window: bool = False,
    open_families: OpenFamilies | None = None,
    context: NDArray[np.bool_] | None = None,
    ordinary: NDArray[np.bool_] | None = None,
) -> Campaigns:
    """Score the families, flag campaigns, accounts and operator groups; name flagged families from the
    registry when there is one. In a ``clusterer stream`` window (``known``: :func:`known_stage`), a flagged
    family that holds campaigns flagged earlier in the day takes their one ID (:class:`KeepNames`). Flags
    stay the score's: a family is not flagged for matching a campaign (measured: such flags only ever added
    ordinary families that one window had flagged). ``earlier`` (a stream window): the day's earlier prompts
    of the window's accounts, matched to its families (:func:`~clusterer.campaigns.earlier.earlier_in_families`)
    for the account-focus and one-shot terms; ``window``: a stream window (:func:`window_shared`);
    ``open_families``: the open families it holds, whose earlier senders the spread counts
    (:mod:`~clusterer.campaigns.open`); ``context``: per embedded row, a carried exemplar (a family's exemplar
    prompt is one of the window's own rows when it has any: :func:`~clusterer.clustering.summary.summarise`)."""
    k = len(tmpl.text)
    labels = day.scatter(clu.labels, -1, np.int64)
    day_so_far = _day_so_far(day, cfg, clu, labels, sk, earlier) if earlier is not None and sk is not None else None
    summary = summarise(clu.labels, vec.emb, day.rows, k, context)
    naming = None
    if registry is not None:
        naming = Naming(
            registry,
            cfg.registry,
            summary.centroid,
            tmpl.frequent,
            tmpl.common,
            tmpl.text,
            tmpl.variants,
            variant_owners(clu, tmpl),
        )
        if known is not None:
            cc = cfg.cluster
            tg = clu.grouping.template_groups
            join = sk is not None and tg is not None and cc.join_variants and cc.merge
            lines = LineEvidence(clu.labels, tg, sk, cc.family_min_sim) if join else None
            naming = KeepNames(naming, known, lines)
    shared = window_shared(clu, known, window)
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
        labels,
        day.norm.key,
        info,
        tmpl.key,
        cfg.campaign,
        namer=naming,
        fit=day.scatter(clu.fit, 0.0, np.float32),
        shared=day.scatter(shared, 0, np.int32) if shared is not None else None,
        copies=day.scatter(clu.copies, False, bool),
        fragments=day.scatter(clu.fragments, -1, np.int64) if clu.fragments is not None and not window else None,
        ordinary=ordinary,
        accounts=(day.account_ids, day.accounts),
        orgs=day.orgs if day.has_orgs else None,
        created=day.created,
        network=day.network,
        earlier=day_so_far,
        open_families=open_families,
    )
    return Campaigns(dec, summary, naming, known)


def window_shared(clu: Clustering, known: Known | None, window: bool) -> NDArray[np.int32] | None:
    """The shared-template counts the prompt rule reads (``clu.shared``). In a stream window (``window``) the
    rule holds only in families holding a campaign flagged earlier in the day (``known.held``): a family new
    this window keeps every prompt (a new campaign first shows as a handful of prompts, too few for the
    rule); and the rows carrying such a campaign (its scaffold by the assign rule, or its exemplars:
    ``clu.carried``) keep theirs. None: the rule is off."""
    if clu.shared is None or not window:
        return clu.shared
    if known is None or not known.held or clu.carried is None:
        return None
    carries = np.fromiter((x is not None for x in clu.carried), bool, len(clu.carried))
    exempt = carries | ~np.isin(clu.labels, np.fromiter(known.held, np.int64, len(known.held)))
    return np.where(exempt, np.iinfo(np.int32).max, clu.shared).astype(np.int32)


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
    vec: Any = None
    sigs: Any = None
    n_knn_edges: int = 0  # the kNN graph itself is dropped once its pairs are merged
    n_pairs: int = 0
    clustering: Any = None
    tmpl: Any = None
    camp: Any = None
    tables: Any = None
