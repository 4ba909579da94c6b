"""Per-cluster template description: the common scaffold with slots, its rigidity and coverage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import xxhash
from numpy.typing import NDArray

from ..accel import reference
from ..config import SkeletonConfig
from ..graph.lsh import Signatures
from .normalise import NO_SPACE_CHARS, text_keys
from .skeleton import Skeletons, frequent_shingles, render_templates

PAIRS_PER_CLUSTER = 256  # sampled member pairs for rigidity
TEMPLATE_CHARS = 600
COMMON_SHARE = 0.1
MAX_COMMON = 4000
RENDER_BATCH = 4096  # templates rendered per tokenisation (bounds the token frame)
VARIANT_MIN_ROWS = 3  # a template group (variant) of a cluster with fewer rows has no scaffold set of its own
MAX_VARIANTS = 16  # per cluster, its largest template groups


_UNSPACED = re.compile(f"(?<=[{NO_SPACE_CHARS}]) (?=[{NO_SPACE_CHARS}])")


def _join_unspaced(text: str) -> str:
    """Undo normalisation's one-token-per-character spacing of CJK / Thai-like scripts for display."""
    return _UNSPACED.sub("", text)


@dataclass(frozen=True, slots=True)
class Templates:
    """Aligned with cluster IDs 0..k-1: ``text`` the scaffold with ``{…}`` slots; ``rigidity`` float32
    (k,) mean estimated skeleton Jaccard of sampled member pairs; ``coverage`` float32 (k,) mean share of
    members' shingles that are skeleton; ``key``: content-derived template key per cluster, unique within
    the run (xxh3 of the 8 smallest frequent-shingle hashes; of the 8 smallest member-text keys when the
    cluster has no common skeleton)."""

    text: list[str]
    rigidity: NDArray[np.float32]
    coverage: NDArray[np.float32]
    key: list[str]
    fit: NDArray[np.float32]  # mean share of the frequent shingles each member carries (see _core)
    frequent: list[NDArray[np.uint64]]  # shingles in at least half the members, per cluster (sorted)
    common: list[NDArray[np.uint64]]  # shingles in at least a tenth of the members: every variant's scaffold
    # per cluster, the scaffold of each of its template groups (variants) with at least VARIANT_MIN_ROWS rows:
    # the shingles in at least half of the group's rows (largest groups first, at most MAX_VARIANTS)
    variants: list[list[NDArray[np.uint64]]] = field(default_factory=list)
    variant_groups: list[list[int]] = field(default_factory=list)  # per cluster, the template group of each


def _members(labels: NDArray[np.int64], k: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows of every cluster 0..k-1 grouped by cluster (row order kept) and the group bounds (k + 1,)."""
    member = labels >= 0
    order = np.argsort(labels[member], kind="stable")
    rows_sorted = np.flatnonzero(member)[order]
    bounds = np.searchsorted(labels[member][order], np.arange(k + 1))
    return rows_sorted, bounds


def _core(mem: NDArray[np.int64], sk: Skeletons) -> tuple[NDArray[np.uint64], NDArray[np.uint64], int, float]:
    """For one cluster's member rows: its frequent shingles (in at least half the members), the shingles of
    every member concatenated, the member that carries most of the frequent shingles (its template text is
    rendered from it, see :func:`_render`; −1 when there are none), and its *template fit*: the mean share
    of the frequent shingles each member carries (how uniformly the members share one scaffold, whatever
    their payloads)."""
    lens = sk.indptr[mem + 1] - sk.indptr[mem]
    take = np.repeat(sk.indptr[mem] - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(int(lens.sum()))
    member_hashes = sk.hashes[take]
    freq = frequent_shingles(member_hashes, len(mem))
    if not len(freq):
        return freq, member_hashes, -1, 0.0
    owner_row = np.repeat(np.arange(len(mem)), lens)
    counts = np.bincount(owner_row, weights=np.isin(member_hashes, freq), minlength=len(mem))
    return freq, member_hashes, int(mem[int(np.argmax(counts))]), float(counts.mean() / len(freq))


def _render(best: list[int], freq: list[NDArray[np.uint64]], texts: pl.Series, sk: Skeletons, ngram: int) -> list[str]:
    """Template text of each cluster: ``texts[best[c]]`` with every token outside ``freq[c]`` replaced by
    ``{…}`` (one per run), cut to TEMPLATE_CHARS; '' where ``best[c]`` is −1 (no common scaffold)."""
    out = [""] * len(best)
    todo = [c for c, b in enumerate(best) if b >= 0]
    for lo in range(0, len(todo), RENDER_BATCH):
        part = todo[lo : lo + RENDER_BATCH]
        rows = texts.gather(np.asarray([best[c] for c in part], np.int64))
        for c, text in zip(part, render_templates(rows, [freq[c] for c in part], ngram, sk.common_cores), strict=True):
            out[c] = text[:TEMPLATE_CHARS]
    return out


def core_texts(labels: NDArray[np.int64], texts: pl.Series, sk: Skeletons, ngram: int) -> list[str]:
    """Template text of every cluster (see :func:`_core`), aligned with cluster IDs 0..k-1."""
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    rows_sorted, bounds = _members(labels, k)
    cores = [_core(rows_sorted[bounds[c] : bounds[c + 1]], sk) for c in range(k)]
    return _render([c[2] for c in cores], [c[0] for c in cores], texts, sk, ngram)


def _variants(
    groups: NDArray[np.int64] | None, member_hashes: NDArray[np.uint64], mem: NDArray[np.int64], sk: Skeletons
) -> tuple[list[int], list[NDArray[np.uint64]]]:
    """The scaffold of each template group among one cluster's members ``mem`` (``groups``: the group of each
    member, −1 none; None: one group; ``member_hashes``: their skeleton shingles concatenated): the
    shingles in at least half of the group's rows, for the groups of at least ``VARIANT_MIN_ROWS`` rows,
    largest first (ties: the lower group), at most ``MAX_VARIANTS``; empty scaffolds are left out. Returns
    the groups and their scaffolds."""
    groups = np.zeros(len(mem), np.int64) if groups is None else groups
    lens = sk.indptr[mem + 1] - sk.indptr[mem]
    g, n = np.unique(groups[groups >= 0], return_counts=True)
    keep = g[n >= VARIANT_MIN_ROWS][np.argsort(-n[n >= VARIANT_MIN_ROWS], kind="stable")][:MAX_VARIANTS]
    owner = np.repeat(groups, lens)
    out_g, out = [], []
    for x in keep.tolist():
        s = frequent_shingles(member_hashes[owner == x], int((groups == x).sum()))
        if len(s):
            out_g.append(int(x))
            out.append(s)
    return out_g, out


def describe_templates(
    labels: NDArray[np.int64],
    texts: pl.Series,
    sk: Skeletons,
    sigs: Signatures,
    cfg: SkeletonConfig,
    seed: int,
    groups: NDArray[np.int64] | None = None,
) -> Templates:
    """Template text, rigidity and coverage of each cluster (``labels`` aligned with ``texts``), and the
    scaffold of each of its variants (``groups``: the template group of each row, −1 none; None: each
    cluster is one variant).

    The template is rendered from the member carrying most of the cluster's frequent shingles (those in
    at least half of the members); tokens outside them become ``{…}``.
    """
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if k == 0:
        return Templates([], np.zeros(0, np.float32), np.zeros(0, np.float32), [], np.zeros(0, np.float32), [], [])
    rng = np.random.default_rng(seed)
    member = labels >= 0
    rows_sorted, bounds = _members(labels, k)
    cov = np.bincount(labels[member], weights=sk.coverage[member], minlength=k) / np.maximum(
        np.bincount(labels[member], minlength=k), 1
    )
    pi, pj, owner = [], [], []
    out_best: list[int] = []
    out_key: list[str] = []
    out_freq: list[NDArray[np.uint64]] = []
    out_common: list[NDArray[np.uint64]] = []
    out_variants: list[tuple[list[int], list[NDArray[np.uint64]]]] = []
    seen: dict[str, int] = {}  # keys are made unique in cluster order (clusters are numbered by first row)
    out_fit: list[float] = []
    for c in range(k):
        mem = rows_sorted[bounds[c] : bounds[c + 1]]
        m = len(mem)
        if m >= 2:
            t = min(PAIRS_PER_CLUSTER, m * (m - 1) // 2)
            a = rng.integers(0, m, t)
            b = (a + rng.integers(1, m, t)) % m
            pi.append(mem[a])
            pj.append(mem[b])
            owner.append(np.full(t, c))
        # the members' shingles, gathered once for both thresholds and the exemplar choice
        freq, member_hashes, best, fit = _core(mem, sk)
        out_best.append(best)
        out_fit.append(fit)
        out_freq.append(freq)
        out_common.append(frequent_shingles(member_hashes, m, COMMON_SHARE)[:MAX_COMMON])
        out_variants.append(_variants(None if groups is None else groups[mem], member_hashes, mem, sk))
        if len(freq):
            key = xxhash.xxh3_64_hexdigest(np.sort(freq)[:8].tobytes())
        else:  # no common skeleton: the key still comes from content (the members' texts), never from position
            member_keys = np.unique(text_keys(texts.gather(mem)))[:8]
            key = xxhash.xxh3_64_hexdigest(b"texts" + member_keys.tobytes())
        n_same = seen.get(key, 0)
        seen[key] = n_same + 1
        out_key.append(key if n_same == 0 else xxhash.xxh3_64_hexdigest(f"{key}#{n_same}".encode()))
    out_text = [_join_unspaced(t) for t in _render(out_best, out_freq, texts, sk, cfg.ngram)]
    rig = np.zeros(k, np.float32)
    if pi:
        ov = reference.skeleton_overlap(sigs.sig, sigs.sizes, np.concatenate(pi), np.concatenate(pj))
        own = np.concatenate(owner)
        rig = (np.bincount(own, weights=ov[:, 0], minlength=k) / np.maximum(np.bincount(own, minlength=k), 1)).astype(
            np.float32
        )
    return Templates(
        text=out_text,
        rigidity=rig,
        coverage=cov.astype(np.float32),
        key=out_key,
        fit=np.asarray(out_fit, np.float32),
        frequent=out_freq,
        common=out_common,
        variants=[v for _, v in out_variants],
        variant_groups=[g for g, _ in out_variants],
    )
