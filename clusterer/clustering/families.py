"""Template families: the second-level grouping of HDBSCAN fragments.

HDBSCAN over the prompt graph finds *fragments*: one cluster per scaffold variant (re-worded, re-ordered,
translated), sometimes several per variant. A family is a group of fragments that are one template. The
grouping requires a group to be *cohesive* — fragments join by average linkage, so a group absorbs another
only when the mean similarity over all their fragment pairs is high, never through one bridging pair — and
it weighs each kind of evidence by how much it can say:

1. **Template stage.** Template evidence alone: the weighted Jaccard of the fragments' skeleton profiles
   (the share of members holding each recurring shingle; ``family_template_full`` counts as full
   evidence) and the cosine of their centred mean embeddings (the day's mean direction removed: small
   sentence encoders put every text in one narrow cone; below ``family_semantic_floor`` it counts 0),
   the latter only between scaffolds in a language the encoder reads (``embed.languages``).
2. **Behaviour stage**, between the template groups of stage 1. A scaffold translated into another
   language shares no shingles with its original, and an English-only encoder cannot compare them; the
   language of each group's scaffold (``py3langid`` over its rendered template) tells when that is so.
   Behaviour evidence, between two groups that are each a scaffold with a slot (ordinary prompts an
   operator's accounts also send are not a variant of its template): the same accounts or multi-account
   organisations send both — a real share of each
   group's prompts (``family_min_sender_share``) — over one payload pool. Each shared account or
   organisation counts 1 / (the effective number of template groups it sends to, 1 / Σ p² over the
   shares of its prompts), so heavy accounts that post evenly into many families say little while a thin
   tail of cover traffic does not hide an operator's organisation; ``family_min_accounts`` such weighted
   accounts (heavy users share a handful, an operator's pool dozens to thousands) or ``family_min_orgs``
   organisations (a registered multi-account organisation is a strong identity) give full evidence; and
   one rhythm: the two groups' time-of-day distributions agree (1 − Kuiper's distance: one job
   load-balanced over its variants runs them together; a second job has its own schedule). Between groups
   in *different* languages behaviour decides. Between groups in one language it decides too, or completes
   a join that template evidence half-supports (mean stage-1 similarity ≥
   ``family_min_template_support``); with neither, the pair may never be in one family: two templates of
   one operator on one account pool and payload pool, run as separate jobs, are two campaigns (linked later
   by their operator group). With an English-only encoder, two English templates of one operator sent by
   the same accounts from one pool at the same times cannot be told from two paraphrased variants of one
   template; they are joined.

In a ``clusterer stream`` window the behaviour stage reads the day so far too: the campaigns' schedules so far
in the rhythm evidence (:class:`DayRhythm`) and the window's accounts' earlier prompts today as shared senders
(:class:`DaySenders`), since inside one hour a load-balanced campaign sends each account one prompt.

Knobs (``[cluster]``): ``family_min_sim`` (the average-linkage threshold of both stages) and the ones
named above.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.sparse import coo_matrix, csr_matrix, triu

from ..accel import fastops
from ..config import ClusterConfig
from ..text.skeleton import SLOT, SLOT_BUCKETS, Skeletons
from ..vectors.rows import RowVectors
from .labels import by_first_row, member_shingles, n_labels

LANG_MIN_PROB = 0.7  # a fragment's language counts only when py3langid is at least this sure
# the languages py3langid chooses among: the widely used ones (its full set of 97 splits short scaffolds
# between close relatives, e.g. Spanish / Aragonese / Galician, and is sure of none)
LANGUAGES = (
    "ar bg bn ca cs da de el en es et fa fi fr he hi hr hu id it ja ko lt lv ms nl no pl pt ro ru sk sl sr sv "
    "sw ta th tl tr uk ur vi zh"
).split()
LANG_SAMPLE = 5  # members whose scaffold text is read for the language
CENTROID_NEIGHBOURS = 10  # semantic candidate pairs: each fragment's nearest fragments by centroid
# every pair among this many largest fragments is scored: they carry most of the pair weight average linkage
# needs covered, and on a big day a large fragment's nearest centroids are mostly small fragments of its own
# variant, so nearest-neighbour pairs alone leave large variant pairs unknown (a 1M day split one campaign's
# variants into three families that way)
LARGEST_ALL_PAIRS = 256
SLOTTED_MIN_CORE = 6  # behaviour joins only groups with a scaffold of at least this many shingles


@dataclass(frozen=True, slots=True)
class DayRhythm:
    """The day so far, for the rhythm evidence of one window of ``clusterer stream``: ``campaign`` int64 (n,)
    per row the campaign of earlier windows it carries (−1 none), ``profiles`` float64 (k × 48) each such
    campaign's flagged prompts per half hour of the day so far. A template group's time-of-day profile is
    its own rows' plus, per campaign, the day's profile times the share of the campaign's rows it holds; so
    a second job that started this hour is told from a campaign that has run since midnight, as the batch
    run of the whole day tells them apart (an hour alone holds no schedule)."""

    campaign: NDArray[np.int64]
    profiles: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DaySenders:
    """The day so far of a stream window's accounts, for the sender evidence: their earlier prompts today that
    hold a fragment's core (:func:`~clusterer.campaigns.earlier.earlier_hits`), one entry per (earlier
    prompt, fragment it counts for): ``prompt`` int64 its number, ``fragment`` int64, ``account`` int64 the
    account's code (as the window's rows have it), ``weight`` float64 the prompts it stands for (its
    account's earlier prompts over those sampled), ``half_hour`` int64 its half hour of the day (−1: not read
    for the rhythm; or None). A load-balanced campaign sends each account one prompt an hour, so inside one
    window its paraphrased variants share no sender; over the day they share most, as the batch run of the
    day sees them."""

    prompt: NDArray[np.int64]
    fragment: NDArray[np.int64]
    account: NDArray[np.int64]
    weight: NDArray[np.float64]
    half_hour: NDArray[np.int64] | None = None  # of the day, per entry: the rhythm evidence reads them too

    def _per_group(self, group_of: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The entries that count (a prompt once per template group) and their groups."""
        inside = self.fragment < len(group_of)
        grp = np.where(inside, group_of[np.where(inside, self.fragment, 0)], -1)
        ok = grp >= 0
        key = np.unique(np.stack([self.prompt[ok], grp[ok]]), axis=1, return_index=True)[1]
        idx = np.flatnonzero(ok)[key]
        return idx, grp[idx]

    def group_profiles(self, group_of: NDArray[np.int64], g: int) -> NDArray[np.float64] | None:
        """float64 (g × 48): per template group the earlier prompts that went to it per half hour of the day
        (None without times; entries of half hour −1 are left out)."""
        if self.half_hour is None:
            return None
        idx, grp = self._per_group(group_of)
        timed = self.half_hour[idx] >= 0
        out = np.zeros((g, 48), np.float64)
        np.add.at(out, (grp[timed], self.half_hour[idx][timed]), self.weight[idx][timed])
        return out

    def group_counts(self, group_of: NDArray[np.int64], g: int, n_accounts: int) -> csr_matrix:
        """Sparse (g × n_accounts) float: per template group (``group_of``: per fragment) and account, the
        earlier prompts that went to the group (a prompt holding two of its fragments counts once)."""
        idx, grp = self._per_group(group_of)
        out = coo_matrix((self.weight[idx], (grp, self.account[idx])), shape=(g, max(n_accounts, 1))).tocsr()
        out.sum_duplicates()
        return out


@dataclass(frozen=True, slots=True)
class Grouping:
    """Result of :func:`group_fragments`: ``labels`` int64 (n,) family per row (−1 noise), numbered by each
    family's first row; ``fragments`` / ``families``: counts before and after; ``template_joins`` /
    ``behaviour_joins``: merges made by each stage; ``language``: per family, the language code of its
    scaffold ('' when unsure); ``template_groups``: int64 (n,) the template group (stage 1) of each row (−1
    noise; the fragment itself when families are not grouped) and ``group_language`` its language."""

    labels: NDArray[np.int64]
    fragments: int
    families: int
    template_joins: int
    behaviour_joins: int
    language: list[str]
    template_groups: NDArray[np.int64] | None = None
    group_language: list[str] | None = None
    line_joins: int = 0  # flagged families joined after the decision (:mod:`.lines`)
    wrapper_groups: int = 0  # short-wrapper groups kept after the decision (:mod:`.wrappers`) ...
    wrapper_joined: int = 0  # ... of which joined the flagged family holding their line ...
    wrapper_rows: int = 0  # ... and the rows they hold


def _count_matrix(rows: NDArray[np.int64], cols: NDArray[np.int64], k: int, n_cols: int) -> csr_matrix:
    """Sparse (k × n_cols) counts of (row, col) pairs; rows < 0 are ignored."""
    m = rows >= 0
    out = coo_matrix((np.ones(int(m.sum())), (rows[m], cols[m])), shape=(k, max(n_cols, 1))).tocsr()
    out.sum_duplicates()
    return out


@numba.njit(cache=True, nogil=True)
def _pair_sums(xp, xi, xv, yp, yi, yv, a, b, use_min):  # pragma: no cover - compiled
    """For every t: Σ over the columns both rows x[a[t]] and y[b[t]] hold of x·y (or min(x, y) with
    ``use_min``). Sorted column indices are merged; a short row against a long one is binary-searched in it.
    Memory O(1) whatever the rows' lengths (an account pool of 10^5 senders is one long row)."""
    out = np.zeros(len(a))
    for t in range(len(a)):
        p, pe, q, qe = xp[a[t]], xp[a[t] + 1], yp[b[t]], yp[b[t] + 1]
        s = 0.0
        if (pe - p) * 16 < qe - q or (qe - q) * 16 < pe - p:
            short_x = (pe - p) < (qe - q)
            lo_s, hi_s = (p, pe) if short_x else (q, qe)
            lo_l, hi_l = (q, qe) if short_x else (p, pe)
            si, li = (xi, yi) if short_x else (yi, xi)
            for u in range(lo_s, hi_s):
                v = lo_l + np.searchsorted(li[lo_l:hi_l], si[u])
                if v < hi_l and li[v] == si[u]:
                    xu, yv_ = (xv[u], yv[v]) if short_x else (xv[v], yv[u])
                    s += min(xu, yv_) if use_min else xu * yv_
                    lo_l = v + 1
        else:
            while p < pe and q < qe:
                if xi[p] == yi[q]:
                    s += min(xv[p], yv[q]) if use_min else xv[p] * yv[q]
                    p += 1
                    q += 1
                elif xi[p] < yi[q]:
                    p += 1
                else:
                    q += 1
        out[t] = s
    return out


def _pair_op(x: csr_matrix, y: csr_matrix, a: NDArray[np.int64], b: NDArray[np.int64], use_min: bool):
    x, y = csr_matrix(x), csr_matrix(y)
    x.sort_indices()
    y.sort_indices()
    return _pair_sums(
        x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data.astype(np.float64),
        y.indptr.astype(np.int64), y.indices.astype(np.int64), y.data.astype(np.float64),
        np.ascontiguousarray(a, dtype=np.int64), np.ascontiguousarray(b, dtype=np.int64), use_min,
    )  # fmt: skip


def _rows_dot(x: csr_matrix, y: csr_matrix, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.float64]:
    """Dot product of row x[a[t]] with row y[b[t]] for every t (x, y over one column space)."""
    return _pair_op(x, y, a, b, use_min=False)


def _rows_min_sum(x: csr_matrix, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.float64]:
    """Σ_c min(x[a, c], x[b, c]) for every pair (the weighted Jaccard's numerator)."""
    return _pair_op(x, x, a, b, use_min=True)


def _largest_pairs(size: NDArray[np.float64], n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every pair among the ``n`` largest fragments (ties to the lower id)."""
    top = np.sort(np.argsort(-size, kind="stable")[:n]).astype(np.int64)
    ia, ib = np.triu_indices(len(top), 1)
    return top[ia], top[ib]


def _unique_pairs(a: NDArray[np.int64], b: NDArray[np.int64], k: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    code = fastops.unique(lo[lo != hi] * k + hi[lo != hi])
    return code // k, code % k


def _skeleton_profiles(labels: NDArray[np.int64], sk: Skeletons, k: int, min_share: float) -> csr_matrix:
    """(k × shingles) share of each fragment's members holding each skeleton shingle, kept at >= min_share
    (counted per distinct pair: :func:`~.labels.member_shingles`); only the kept entries become a matrix."""
    row_of = np.repeat(np.arange(len(labels), dtype=np.int64), np.diff(sk.indptr))
    c, h, count, size = member_shingles(labels, row_of, sk.hashes, k)
    share = count / size[c].astype(np.float64)
    kept = share >= min_share
    codes = fastops.unique_inverse(h[kept])[1] if kept.any() else np.zeros(0, np.int64)
    width = int(codes.max()) + 1 if len(codes) else 1
    return csr_matrix((share[kept], (c[kept].astype(np.int64), codes)), shape=(k, width))


def _centred_centroids(labels: NDArray[np.int64], emb: RowVectors, k: int) -> NDArray[np.float32]:
    """Unit mean direction of each fragment after removing the day's mean direction."""
    m = np.flatnonzero(labels >= 0)
    member = csr_matrix((np.ones(len(m)), (labels[m], emb.of_row[m])), shape=(k, len(emb.vectors)))
    vec = emb.vectors.astype(np.float64)
    sums = np.asarray(member @ vec)
    mean = np.bincount(emb.of_row, minlength=len(vec)) @ vec / max(len(emb.of_row), 1)
    size = np.asarray(member.sum(axis=1))
    cent = sums / np.maximum(size, 1.0) - mean[None, :]
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    return cent.astype(np.float32)


def _centroid_neighbours(cent: NDArray[np.float32], n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each fragment's ``n`` nearest fragments by centroid (exact inner product; K is small)."""
    import faiss

    k = len(cent)
    nn = min(n + 1, k)
    index = faiss.IndexFlatIP(cent.shape[1])
    index.add(np.ascontiguousarray(cent))
    _, idx = index.search(np.ascontiguousarray(cent), nn)
    a = np.repeat(np.arange(k, dtype=np.int64), nn)
    b = idx.ravel().astype(np.int64)
    ok = b >= 0
    return a[ok], b[ok]


def fragment_languages(labels: NDArray[np.int64], texts: pl.Series, sk: Skeletons, ngram: int, k: int) -> list[str]:
    """Language code of each fragment's scaffold ('' when py3langid is less than LANG_MIN_PROB sure or the
    fragment has no common scaffold): py3langid over its template text (the shingles at least half its
    members share, rendered), slots removed. Lines borrowed from other variants or fillers that only some
    members carry do not sway it."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from ..text.templates import core_texts

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(LANGUAGES)
    out = []
    for text in core_texts(labels, texts, sk, ngram):
        words = text.replace(SLOT, " ").strip()
        if len(words) < 12:
            out.append("")
            continue
        lang, prob = ident.classify(words)
        out.append(lang if prob >= LANG_MIN_PROB else "")
    return out


def _group_languages(
    groups: NDArray[np.int64],
    grp: NDArray[np.int64],
    g: int,
    lang0: list[str],
    texts: pl.Series,
    sk: Skeletons,
    ngram: int,
) -> list[str]:
    """:func:`fragment_languages` of the ``g`` template groups (``groups``: int64 (n,) per row; ``grp``: each
    fragment's group; ``lang0``: the fragments' languages). A group of one fragment has that fragment's members
    in the same order, so the same template text and language: only the groups of several fragments are read."""
    n_frag = np.bincount(grp[grp >= 0], minlength=g)
    out = [""] * g
    for f, x in enumerate(grp.tolist()):
        if x >= 0 and n_frag[x] == 1:
            out[x] = lang0[f]
    several = np.flatnonzero(n_frag > 1)
    if len(several):
        index = np.full(g, -1, np.int64)
        index[several] = np.arange(len(several))
        relabelled = np.where(groups >= 0, index[np.maximum(groups, 0)], -1)
        read = fragment_languages(relabelled, texts, sk, ngram, len(several))
        for x, lang in zip(several.tolist(), read, strict=True):
            out[x] = lang
    return out


def average_linkage(
    k: int,
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    sim: NDArray[np.float64],
    min_sim: float,
    weight: NDArray[np.float64] | None = None,
    min_coverage: float = 0.7,
) -> tuple[NDArray[np.int64], int]:
    """Group ``k`` items by weighted average linkage over a sparse similarity: the two groups with the highest
    mean similarity over their *scored* item pairs (each pair weighted by ``weight[x] · weight[y]``, default
    1) merge while that mean is at least ``min_sim`` and the scored pairs carry at least ``min_coverage`` of
    the two groups' whole pair weight. A pair never scored is unknown, not evidence: one bridging pair
    between two groups covers little of their pair weight, so groups cannot chain through it; a pair scored
    0 counts as known dissimilarity; a negative pair forbids the merge outright. Weighting by fragment size
    keeps a few small, noisy fragments from outvoting the large ones as the day grows. Ties go to the lowest
    ids, so the result is deterministic. Returns (int64 (k,) group id = the smallest member id, number of
    merges). Memory O(pairs); a merge updates its neighbours only.
    """
    w = np.ones(k) if weight is None else np.asarray(weight, np.float64)
    parent = np.arange(k)
    tot = w.copy()
    # group -> neighbour group -> [Σ w·w·sim over scored pairs, Σ w·w over scored pairs]
    nbr: list[dict[int, list[float]]] = [{} for _ in range(k)]
    for x, y, s in zip(a.tolist(), b.tolist(), sim.tolist(), strict=True):
        if x == y:
            continue
        m = float(w[x] * w[y])
        e = nbr[x].setdefault(y, [0.0, 0.0])
        e[0] += -np.inf if s < 0 else s * m
        e[1] += m
        nbr[y][x] = e

    def mean(x: int, y: int) -> float | None:
        s, m = nbr[x][y]
        return s / m if m > 0 and m >= min_coverage * tot[x] * tot[y] * (1 - 1e-12) else None

    heap = []
    for x in range(k):
        for y in nbr[x]:
            v = mean(x, y) if x < y else None
            if v is not None and v >= min_sim:
                heap.append((-v, x, y))
    heapq.heapify(heap)
    members: dict[int, list[int]] = {}
    merges = 0
    while heap:
        neg, x, y = heapq.heappop(heap)
        if parent[x] != x or parent[y] != y or y not in nbr[x]:
            continue
        v = mean(x, y)
        if v is None or abs(-neg - v) > 1e-12:
            continue  # stale: the pair's mean changed since it was pushed
        keep, gone = (x, y) if x < y else (y, x)
        parent[gone] = keep
        members.setdefault(keep, [keep]).extend(members.pop(gone, [gone]))
        tot[keep] += tot[gone]
        merges += 1
        del nbr[keep][gone]
        del nbr[gone][keep]
        for z, (sz, mz) in nbr[gone].items():
            del nbr[z][gone]
            e = nbr[keep].setdefault(z, [0.0, 0.0])
            e[0] += sz
            e[1] += mz
            nbr[z][keep] = e
        nbr[gone] = {}
        for z in nbr[keep]:
            v = mean(keep, z)
            if v is not None and v >= min_sim:
                heapq.heappush(heap, (-v, min(keep, z), max(keep, z)))
    out = np.arange(k)
    for root, mem in members.items():
        out[mem] = root
    return out, merges


def _template_stage(
    labels: NDArray[np.int64],
    emb: RowVectors,
    sk: Skeletons,
    k: int,
    cfg: ClusterConfig,
    readable: NDArray[np.bool_],
) -> tuple[NDArray[np.int64], int, tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]]:
    """Stage 1: fragments grouped by template evidence (see the module docstring). ``readable``: bool (k,)
    whether the encoder reads the fragment's language; the semantic term counts only between two such.
    Returns (group id per fragment, merges, the scored fragment pairs (a, b, similarity))."""
    share = _skeleton_profiles(labels, sk, k, cfg.family_profile_share)
    # candidate pairs share a profile shingle; a shingle in the profiles of very many fragments (generic
    # wording) proposes no pairs — its co-occurrence would be quadratic in its spread — though it still
    # counts in the similarity of pairs proposed otherwise
    prof = share.tocsc()
    spread = np.diff(prof.indptr)
    prof = prof[:, np.flatnonzero(spread <= max(64, k // 200))].tocsr()
    prof.data[:] = 1.0
    shared = triu(prof @ prof.T, 1).tocoo()
    cent = _centred_centroids(labels, emb, k)
    na, nb = _centroid_neighbours(cent, CENTROID_NEIGHBOURS)
    size = np.maximum(np.bincount(labels[labels >= 0], minlength=k), 1).astype(np.float64)
    la, lb = _largest_pairs(size, LARGEST_ALL_PAIRS)
    a, b = _unique_pairs(np.concatenate([shared.row, na, la]), np.concatenate([shared.col, nb, lb]), k)
    inter = _rows_min_sum(share, a, b)
    tot = np.asarray(share.sum(axis=1)).ravel()
    template = inter / np.maximum(tot[a] + tot[b] - inter, 1e-12)
    semantic = np.einsum("ij,ij->i", cent[a], cent[b]).astype(np.float64)
    floor = cfg.family_semantic_floor
    sem = np.where(readable[a] & readable[b], np.clip((semantic - floor) / (1.0 - floor), 0.0, 1.0), 0.0)
    sim = np.maximum(np.minimum(1.0, template / cfg.family_template_full), sem)
    groups, joins = average_linkage(k, a, b, sim, cfg.family_min_sim, size, cfg.family_min_coverage)
    return groups, joins, (a, b, sim)


def _sender_evidence(
    groups: NDArray[np.int64],
    senders: NDArray[np.int64],
    g: int,
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    cfg: ClusterConfig,
    min_mass: float,
    earlier: csr_matrix | None = None,
) -> NDArray[np.float64]:
    """Behaviour evidence in [0, 1] from one kind of sender (accounts or organisations; −1 unknown) between
    template groups a, b: min(1, specific shared senders / ``min_mass``), where each shared sender
    counts 1 / (its effective number of groups), provided the shared senders send at least ``family_min_sender_share``
    of each group's prompts (a stray prompt is no link). ``earlier``: (g × senders) the senders' earlier
    prompts today per group (a stream window, :class:`DaySenders`), counted with the window's."""
    counts = _sender_counts(groups, senders, g, earlier)
    # specificity: 1 / the sender's effective number of groups, Σ p², p = share of its clustered prompts
    # per group (a thin tail of cover traffic spread over many small clusters barely lowers it; an account
    # posting evenly into 20 families gets 1/20)
    tot = np.asarray(counts.sum(axis=0)).ravel()
    w = np.asarray(counts.multiply(counts).sum(axis=0)).ravel() / np.maximum(tot * tot, 1.0)
    present = counts.copy()
    present.data[:] = 1.0
    size = np.bincount(groups[groups >= 0], minlength=g).astype(np.float64)
    if earlier is not None:
        size += np.asarray(earlier.sum(axis=1)).ravel()
    size = np.maximum(size, 1.0)
    ab = _rows_dot(counts, present, a, b) / size[a]
    ba = _rows_dot(counts, present, b, a) / size[b]
    mass = _rows_dot(csr_matrix(present.multiply(w[None, :])), present, a, b)
    ev = np.minimum(1.0, mass / min_mass)
    return np.where(np.minimum(ab, ba) >= cfg.family_min_sender_share, ev, 0.0)


def _sender_counts(
    groups: NDArray[np.int64], senders: NDArray[np.int64], g: int, earlier: csr_matrix | None = None
) -> csr_matrix:
    """Sparse (g × senders) prompts per template group and sender (−1 unknown: left out), plus ``earlier``."""
    ok = (groups >= 0) & (senders >= 0)
    counts = _count_matrix(np.where(ok, groups, -1), np.maximum(senders, 0), g, int(senders.max()) + 1)
    if earlier is not None and earlier.nnz:
        counts = csr_matrix(counts + earlier)  # one sender coding: the shapes agree (else scipy raises)
    return counts


def time_profiles(
    groups: NDArray[np.int64],
    times: NDArray[np.int64],
    g: int,
    rhythm: DayRhythm | None = None,
    earlier: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """float64 (g × 48): each group's rows per half hour of the day (``times``: epoch seconds per row), plus
    with ``rhythm`` (:class:`DayRhythm`) each campaign's day so far times the share of its rows the group
    holds, plus ``earlier`` (g × 48: the window's accounts' earlier prompts today that went to each group,
    :meth:`DaySenders.group_profiles`)."""
    ok = groups >= 0
    bins = (times[ok] % 86_400) // 1_800
    prof = _count_matrix(groups[ok], bins.astype(np.int64), g, 48).toarray().astype(np.float64)
    if rhythm is not None and len(rhythm.profiles):
        has = ok & (rhythm.campaign >= 0)
        held = _count_matrix(groups[has], rhythm.campaign[has], g, len(rhythm.profiles)).toarray()
        prof += (held / np.maximum(held.sum(axis=0, keepdims=True), 1.0)) @ rhythm.profiles
    if earlier is not None:
        prof += earlier
    return prof


def rhythm_agreement(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 − Kuiper's distance between the time-of-day distributions of the rows of ``x`` and ``y`` (k × 48
    counts per half hour; the day is a circle, so Kuiper's rather than Kolmogorov's): 1 for one schedule."""
    cx = np.cumsum(x / np.maximum(x.sum(axis=1, keepdims=True), 1.0), axis=1)
    cy = np.cumsum(y / np.maximum(y.sum(axis=1, keepdims=True), 1.0), axis=1)
    diff = cx - cy
    return 1.0 - (np.maximum(diff.max(axis=1), 0.0) + np.maximum(-diff.min(axis=1), 0.0))


def _behaviour_stage(
    groups: NDArray[np.int64],
    accounts: NDArray[np.int64],
    orgs: NDArray[np.int64] | None,
    sk: Skeletons,
    lang: list[str],
    g: int,
    cfg: ClusterConfig,
    template_support: csr_matrix,
    times: NDArray[np.int64] | None = None,
    rhythm: DayRhythm | None = None,
    earlier: csr_matrix | None = None,
    earlier_times: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.int64], int]:
    """Stage 2: template groups joined by behaviour — shared senders, one payload pool, one rhythm (see
    :func:`_behaviour`). Groups in different languages join on that evidence (plus half their template
    support, which breaks ties towards the template a translation shares tags or markup with). Groups in
    one language, or when either language is unsure, join when their template evidence half-supports the
    join (mean stage-1 similarity ≥ ``family_min_template_support``; half the behaviour evidence is added)
    or on behaviour alone; two groups in one language with neither may never be in one family.
    ``template_support``: (g × g) mean stage-1 similarity between groups (upper triangle); ``times``:
    int64 (n,) epoch seconds per row (None: no rhythm evidence, it counts as agreeing); ``rhythm``: the day so
    far in a stream window (:class:`DayRhythm`); ``earlier``: (g × accounts) the window's accounts' earlier
    prompts today per group (:meth:`DaySenders.group_counts`), counted as shared senders, and
    ``earlier_times`` (g × 48) the same prompts per half hour of the day, counted in the groups' rhythm."""
    cand = []
    kinds = [accounts] + ([orgs] if orgs is not None else [])
    extra = [earlier] + [None] * (len(kinds) - 1)
    for senders, more in zip(kinds, extra, strict=True):
        counts = _sender_counts(groups, senders, g, more)
        # candidates: groups a sender puts at least 5% of its clustered prompts into (at most 20 per
        # sender, so the co-occurrence product stays linear in senders however widely one spreads)
        coo = counts.tocoo()
        tot = np.asarray(counts.sum(axis=0)).ravel()
        main = coo.data >= 0.05 * tot[coo.col]
        present = coo_matrix((np.ones(int(main.sum())), (coo.row[main], coo.col[main])), shape=counts.shape).tocsr()
        co = triu(present @ present.T, 1).tocoo()
        cand.append((co.row.astype(np.int64), co.col.astype(np.int64)))
    if not cand:
        return np.arange(g), 0
    a, b = _unique_pairs(np.concatenate([c[0] for c in cand]), np.concatenate([c[1] for c in cand]), g)
    if len(a) == 0:
        return np.arange(g), 0
    la, lb = np.array(lang, dtype=object)[a], np.array(lang, dtype=object)[b]
    known = (la != "") & (lb != "")
    different = known & (la != lb)
    same = known & (la == lb)
    senders = np.zeros(len(a))
    masses = [cfg.family_min_accounts, cfg.family_min_orgs]
    for kind, mass, more in zip(kinds, masses, extra, strict=False):
        senders = np.maximum(senders, _sender_evidence(groups, kind, g, a, b, cfg, mass, more))
    slot_row = np.repeat(np.arange(len(groups)), np.diff(sk.slot_indptr))
    pay = _count_matrix(groups[slot_row], sk.slot_tokens.astype(np.int64) % SLOT_BUCKETS, g, SLOT_BUCKETS)
    df_ = np.diff(pay.tocsc().indptr).astype(np.float64)
    pay = csr_matrix(pay.multiply((np.log((g + 1.0) / (df_ + 1.0)) + 1.0)[None, :]))
    norm = np.sqrt(np.asarray(pay.multiply(pay).sum(axis=1)).ravel())
    payload = _rows_dot(pay, pay, a, b) / np.maximum(norm[a] * norm[b], 1e-12)
    # one payload pool: tf-idf cosine of payload words, as a soft gate (0.2 -> none, 0.5 and above -> full)
    behaviour = senders * np.clip((payload - 0.2) / 0.3, 0.0, 1.0)
    # behaviour joins templates: both groups must be a scaffold with a slot — a core of at least
    # SLOTTED_MIN_CORE shingles shared by half the members, and most members carrying payload words around
    # it. Ordinary prompts that an operator's accounts also send (cover traffic), or one re-used text, are
    # not a variant of its template however much they share its senders and payload pool.
    core = _skeleton_profiles(groups, sk, g, 0.5)
    core_size = np.diff(core.indptr)
    slot_n = np.diff(sk.slot_indptr)
    ok = groups >= 0
    with_slot = np.bincount(groups[ok], weights=(slot_n[ok] >= 3).astype(np.float64), minlength=g)
    size = np.maximum(np.bincount(groups[ok], minlength=g), 1)
    slotted = (core_size >= SLOTTED_MIN_CORE) & (with_slot / size >= 0.5)
    behaviour = np.where(slotted[a] & slotted[b], behaviour, 0.0)
    if times is not None:
        # one rhythm: 1 − Kuiper's distance between the two groups' time-of-day distributions (48 half-hour
        # bins; Kuiper's rather than Kolmogorov's because the day is a circle). One job load-balanced over
        # its variants runs them together (≈ 0.8-1 even for small groups); a second job on its own
        # schedule, say half the day, scores ≈ 0.5, which counts as no evidence
        prof = time_profiles(groups, times, g, rhythm, earlier_times)
        rhythm = rhythm_agreement(prof[a], prof[b])
        behaviour = behaviour * np.clip((rhythm - 0.5) / 0.2, 0.0, 1.0)
    support = np.asarray(template_support[a, b]).ravel()
    supported = support >= cfg.family_min_template_support
    one_lang = np.maximum(np.where(supported, np.minimum(1.0, support + 0.5 * behaviour), 0.0), behaviour)
    # one language, neither template nor behaviour evidence: different templates, never one family
    sim = np.where(same & (one_lang < cfg.family_min_sim), -1.0, one_lang)
    sim = np.where(different, np.minimum(1.0, behaviour + 0.5 * support), sim)
    return average_linkage(g, a, b, sim, cfg.family_min_sim, size.astype(np.float64), cfg.family_min_coverage)


def _renumber(groups: NDArray[np.int64], labels: NDArray[np.int64]) -> NDArray[np.int64]:
    """Per-row labels of ``groups[labels]``, numbered by each group's first row (−1 stays −1)."""
    return by_first_row(np.where(labels >= 0, groups[np.maximum(labels, 0)], -1))[0]


def group_fragments(
    labels: NDArray[np.int64],
    accounts: NDArray[np.int64],
    emb: RowVectors,
    texts: pl.Series,
    sk: Skeletons,
    cfg: ClusterConfig,
    ngram: int,
    encoder_languages: frozenset[str] | None = None,
    orgs: NDArray[np.int64] | None = None,
    times: NDArray[np.int64] | None = None,
    rhythm: DayRhythm | None = None,
    senders: DaySenders | None = None,
) -> Grouping:
    """Group HDBSCAN fragments into template families (see the module docstring).

    ``labels``: int64 (n,) fragment per row (−1 noise); ``accounts``: int64 (n,) account codes; ``orgs``:
    int64 (n,) organisation codes (−1 unknown) or None; ``emb``: the rows' unit vectors; ``texts`` /
    ``sk``: the rows' normalised texts and skeletons (``ngram`` words per shingle); ``encoder_languages``:
    the languages the encoder reads (None: all), where the semantic evidence is trusted; ``times``:
    int64 (n,) epoch seconds per row, for the rhythm evidence, with ``rhythm`` the day so far in a stream
    window (:class:`DayRhythm`), and ``senders`` the window's accounts' earlier prompts today
    (:class:`DaySenders`), for the sender evidence.
    """
    k = n_labels(labels)
    lang0 = fragment_languages(labels, texts, sk, ngram, k) if k else []
    if k < 2 or not cfg.merge:
        return Grouping(labels, k, k, 0, 0, lang0, labels, lang0)
    readable = np.array([encoder_languages is None or x in encoder_languages or x == "" for x in lang0])
    stage1, joins1, (fa, fb, fsim) = _template_stage(labels, emb, sk, k, cfg, readable)
    g1_labels = _renumber(stage1, labels)
    g = int(g1_labels.max()) + 1
    # fragment -> template group, and the mean stage-1 similarity between groups
    grp = np.full(k, -1, np.int64)
    grp[labels[labels >= 0]] = g1_labels[labels >= 0]
    n_frag = np.bincount(grp, minlength=g).astype(np.float64)
    ga, gb = np.minimum(grp[fa], grp[fb]), np.maximum(grp[fa], grp[fb])
    cross = ga != gb
    support = coo_matrix((fsim[cross], (ga[cross], gb[cross])), shape=(g, g)).tocsr()
    support.sum_duplicates()
    support = csr_matrix(support.multiply(1.0 / n_frag[:, None]).multiply(1.0 / n_frag[None, :]))
    lang1 = _group_languages(g1_labels, grp, g, lang0, texts, sk, ngram)
    day, day_times = None, None
    if senders is not None and len(accounts):
        day, day_times = senders.group_counts(grp, g, int(accounts.max()) + 1), senders.group_profiles(grp, g)
    stage2, joins2 = _behaviour_stage(
        g1_labels, accounts, orgs, sk, lang1, g, cfg, support, times, rhythm, day, day_times
    )
    final = _renumber(stage2, g1_labels)
    n_fam = int(final.max()) + 1 if (final >= 0).any() else 0
    # each family's language: that of the template group holding its first row
    lang = [""] * n_fam
    member = g1_labels >= 0
    for grp, fam in zip(g1_labels[member][::-1].tolist(), final[member][::-1].tolist(), strict=True):
        lang[fam] = lang1[grp]
    return Grouping(final, k, n_fam, joins1, joins2, lang, g1_labels, lang1)
