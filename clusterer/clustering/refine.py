"""Refinement after HDBSCAN: noise joins clusters through a strong edge, neighbour votes, or the template it
carries; and how much of its cluster's scaffold each member carries."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from ..accel import fastops
from .labels import member_shingles, n_labels


def attach_noise(
    labels: NDArray[np.int64], i: NDArray[np.int64], j: NDArray[np.int64], sim: NDArray[np.float32], min_sim: float
) -> NDArray[np.int64]:
    """Give each noise node the cluster of its most similar clustered neighbour when that edge's similarity
    is at least ``min_sim`` (HDBSCAN leaves the thin edge of a dense template family as noise; one strong
    edge to a member is evidence enough). One pass, so attached nodes do not chain further."""
    if min_sim > 1.0 or len(i) == 0:
        return labels
    strong = sim >= min_sim
    # both directions of each edge, filtered before they are put together (the edge list is the day's
    # largest array: never copy it whole; one-byte lookups of the noise mask rather than of the labels)
    noise = labels < 0
    ni, nj = noise[i], noise[j]
    fwd, bwd = strong & ni & ~nj, strong & nj & ~ni
    del strong, ni, nj
    if not (fwd.any() or bwd.any()):
        return labels
    src, dst, s = (
        np.concatenate([i[fwd], j[bwd]]),
        np.concatenate([j[fwd], i[bwd]]),
        np.concatenate([sim[fwd], sim[bwd]]),
    )
    best = fastops.best_per_group(src, s, dst)  # per noise node: best similarity, ties to the lowest row
    out = labels.copy()
    out[src[best]] = labels[dst[best]]
    return out


def propagate_labels(
    labels: NDArray[np.int64],
    i: NDArray[np.int64],
    j: NDArray[np.int64],
    sim: NDArray[np.float32],
    min_sim: float,
    min_votes: int,
    min_share: float,
    rounds: int,
) -> NDArray[np.int64]:
    """Grow clusters into their noise fringe by neighbour votes.

    A loose family (a scaffold paraphrased per prompt) beside dense ones can peel off point by point in the
    hierarchy and read as noise, though its members' neighbours are each other and the family's cluster.
    Each round, a noise node joins the cluster holding most of its neighbours over edges with similarity ≥
    ``min_sim`` when that cluster has at least ``min_votes`` of them and at least ``min_share`` of all such
    neighbours (noise included); nodes joined in one round vote in the next, for up to ``rounds`` rounds.
    """
    if rounds <= 0 or len(i) == 0:
        return labels
    keep = sim >= min_sim
    i, j = i[keep], j[keep]
    del keep
    deg = np.bincount(i, minlength=len(labels)) + np.bincount(j, minlength=len(labels))
    # labels only move from noise to a cluster: an edge between two clustered nodes never votes
    noise = labels < 0
    touch = noise[i] | noise[j]
    i, j = i[touch], j[touch]
    del noise, touch
    out = labels.copy()
    width = int(out.max()) + 1  # cluster numbers never change
    for _ in range(rounds):
        # half-edges from a noise node to a clustered one, both directions, without doubling the edge list
        li, lj = out[i], out[j]
        fwd, bwd = (li < 0) & (lj >= 0), (lj < 0) & (li >= 0)
        if not (fwd.any() or bwd.any()):
            break
        src, lab = np.concatenate([i[fwd], j[bwd]]), np.concatenate([lj[fwd], li[bwd]])
        del li, lj, fwd, bwd
        code, votes = fastops.unique_counts(src * width + lab)
        node, cl = code // width, code % width
        best = fastops.best_per_group(node, votes, cl)
        node, cl, votes = node[best], cl[best], votes[best]
        good = (votes >= min_votes) & (votes >= min_share * deg[node])
        if not good.any():
            break
        out[node[good]] = cl[good]
    return out


MemberTable = tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.uint64], NDArray[np.uint32], NDArray[np.int64]]


def member_table(labels: NDArray[np.int64], sk_indptr: NDArray[np.int64], sk_hashes: NDArray[np.uint64]) -> MemberTable:
    """The row of every skeleton entry, and :func:`~.labels.member_shingles` of ``labels``: (row_of, cluster,
    shingle, count, cluster sizes). Computed once when :func:`core_share` and :func:`shared_template` read the
    same labels."""
    row_of = np.repeat(np.arange(len(labels), dtype=np.int64), np.diff(sk_indptr))
    return (row_of, *member_shingles(labels, row_of, sk_hashes, n_labels(labels)))


def _cores(
    labels: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_shingles: int,
    members: MemberTable | None = None,
) -> tuple[csr_matrix, NDArray[np.float64], NDArray[np.uint64], NDArray[np.int64]]:
    """Each cluster's *core*: the skeleton shingles held by at least half its members (cores smaller than
    ``min_shingles`` are left empty). Returns (binary (k × core shingles) matrix — one empty column when no
    core is left —, core sizes, the sorted shingle hashes its columns stand for, the row of every skeleton
    entry).

    Counted per distinct (cluster, shingle) pair (:func:`~.labels.member_shingles`); "at least half" is the
    integer test 2·count ≥ size (a product with the reciprocal of the size rounds some exact halves below
    0.5). ``members``: :func:`member_table` of ``labels`` when the caller has it."""
    k = n_labels(labels)
    row_of, c, h, count, size = members if members is not None else member_table(labels, sk_indptr, sk_hashes)
    keep = 2 * count.astype(np.int64) >= size[c]
    c, h = c[keep].astype(np.int64), h[keep]
    full = np.bincount(c, minlength=k) >= min_shingles
    c, h = c[full[c]], h[full[c]]
    uniq_h, col = fastops.unique_inverse(h)
    core = csr_matrix((np.ones(len(c)), (c, col.ravel())), shape=(k, max(len(uniq_h), 1)))
    return core, np.bincount(c, minlength=k).astype(np.float64), uniq_h.astype(np.uint64), row_of


def _held(
    rows_mask: NDArray[np.bool_],
    row_of: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    uniq_h: NDArray[np.uint64],
    core: csr_matrix,
    n: int,
) -> csr_matrix:
    """(rows × clusters) number of each cluster's core shingles that each selected row holds."""
    r, pos = _lookup(rows_mask, row_of, sk_hashes, uniq_h)
    x = csr_matrix((np.ones(len(r)), (r, pos)), shape=(n, core.shape[1]))
    return (x @ core.T).tocsr()


def _lookup(
    rows_mask: NDArray[np.bool_], row_of: NDArray[np.int64], sk_hashes: NDArray[np.uint64], uniq_h: NDArray[np.uint64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(row, column) of each skeleton entry of the selected rows whose shingle is a column of ``uniq_h``."""
    sel = rows_mask[row_of]
    h = sk_hashes[sel]
    pos = np.minimum(np.searchsorted(uniq_h, h), max(len(uniq_h) - 1, 0))
    hit = uniq_h[pos] == h if len(uniq_h) else np.zeros(len(h), bool)
    return row_of[sel][hit], pos[hit]


def core_share(
    labels: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_shingles: int,
    members: MemberTable | None = None,
) -> NDArray[np.float32]:
    """float32 (n,): the share of its own cluster's core (see :func:`attach_by_template`) each row holds;
    0 for noise and for clusters without a core. A member that carries its cluster's scaffold scores
    high; a prompt that joined through a loose edge without the scaffold scores near 0."""
    out = np.zeros(len(labels), np.float32)
    if len(labels) == 0 or labels.max() < 0 or len(sk_hashes) == 0:
        return out
    core, core_size, uniq_h, row_of = _cores(labels, sk_indptr, sk_hashes, min_shingles, members)
    # each member against its own cluster's core only (not the rows × clusters product)
    r, pos = _lookup(labels >= 0, row_of, sk_hashes, uniq_h)
    cnt = np.bincount(r, weights=np.asarray(core[labels[r], pos]).ravel(), minlength=len(labels))
    m = cnt > 0
    out[m] = cnt[m] / np.maximum(core_size[labels[m]], 1.0)
    return out


def shared_template(
    labels: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_share: float,
    min_members: int,
    members: MemberTable | None = None,
) -> NDArray[np.int32]:
    """int32 (n,): how many of its skeleton shingles each member shares with a real part of its cluster —
    shingles held by at least ``min_share`` of the cluster's members and at least ``min_members`` of them
    (at most a quarter of them in a cluster smaller than four times that); 0 for noise. A member of a variant that is
    a minority of its fragment (a translated boilerplate, a re-worded line set) shares its variant's
    shingles with that minority though it holds none of the fragment's core (:func:`core_share`); an
    ordinary prompt drawn in because a few members carry its text as their payload shares its shingles
    with those few only. ``members``: :func:`member_table` of ``labels`` when the caller has it."""
    out = np.zeros(len(labels), np.int32)
    if len(labels) == 0 or labels.max() < 0 or len(sk_hashes) == 0:
        return out
    row_of, c, h, count, size = members if members is not None else member_table(labels, sk_indptr, sk_hashes)
    keep = count >= _real_part(size, min_share, min_members)[c]
    if not keep.any():
        return out
    return _held_by_own(labels, row_of, sk_hashes, c[keep], h[keep]).astype(np.int32)


def _real_part(size: NDArray[np.int64], min_share: float, min_members: int) -> NDArray[np.float64]:
    """Per cluster, how many members hold a shingle that "a real part" of it holds: ``min_share`` of them and
    at least ``min_members`` — never more than a quarter of a small cluster (a variant of a few prompts in a
    small family is not asked for shingles that ten of them hold)."""
    return np.maximum(np.ceil(min_share * size), np.minimum(min_members, np.ceil(size / 4)))


_MIX = np.uint64(0x9E3779B97F4A7C15)  # a 64-bit key per (cluster, shingle): the hash mixed with the cluster


def _held_by_own(
    labels: NDArray[np.int64],
    row_of: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    c: NDArray[np.integer],
    h: NDArray[np.uint64],
    rows_mask: NDArray[np.bool_] | None = None,
) -> NDArray[np.int64]:
    """int64 (n,): how many of its skeleton entries each member (of ``rows_mask``, default all) finds among
    the (cluster, shingle) pairs ``(c, h)`` of its own cluster; 0 for noise."""
    out = np.zeros(len(labels), np.int64)
    if len(c) == 0:
        return out
    uniq = np.unique(h ^ (np.asarray(c).astype(np.uint64) * _MIX))
    lab = labels[row_of]
    member = lab >= 0 if rows_mask is None else (lab >= 0) & rows_mask[row_of]
    probe = sk_hashes[member] ^ (lab[member].astype(np.uint64) * _MIX)
    pos = np.minimum(np.searchsorted(uniq, probe), len(uniq) - 1)
    hit = uniq[pos] == probe
    out[:] = np.bincount(row_of[member][hit], minlength=len(labels))
    return out


def payload_copies(
    fragments: NDArray[np.int64],
    families: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_share: float,
    min_members: int,
    min_contained: float,
    min_scaffold: int = 2,
    max_edit: int = 3,
    one_text: NDArray[np.bool_] | None = None,
    row_of: NDArray[np.int64] | None = None,
) -> NDArray[np.bool_]:
    """bool (n,): the members of a family that are copies of what its campaign prompts wrap, not campaign
    prompts themselves.

    A campaign whose payloads are popular prompts puts, beside each payload's ordinary uses, the members
    that wrap it: HDBSCAN makes one fragment of them (its core is the payload's text), and the fragment joins
    the campaign's family. Its ordinary members then pass every per-prompt test of their fragment — they
    hold its core, and a real part of it shares their shingles. Here the *family's* scaffold decides: the
    shingles a real part of the family holds (:func:`shared_template`'s rule, ``min_share`` /
    ``min_members``, over the family). A member is a copy when it holds none of them while at least
    ``min_contained`` of its own shingles are held, in its own fragment, by members that carry at least
    ``min_scaffold`` of them — its whole text is what they wrap. A variant that is a minority of its family
    (a translation, a re-worded line set) also holds none of the family's scaffold, but its lines are its
    own, not inside the other members' prompts, so it is not a copy. A popular prompt's ordinary uses can
    also make a fragment of their own that joins the family (its wording is close to the scaffold's): when
    most of its members hold none of the family's scaffold, most of the family's members carry it, and the
    fragment is one text — the median member has ``min_contained`` of its shingles in the fragment's core —
    a member that differs from that text by at most ``max_edit`` shingles (one word's worth, the shingle
    length) is a copy too (:func:`one_text_rows`; pass it as ``one_text`` when computed already). A
    minority variant's members differ by their payloads, by more than a word — unless the variant sends one
    fixed text, which these rules cannot tell from a popular prompt's copies. ``min_contained`` above 1
    turns the rule off. ``row_of``: the row of every skeleton entry (:func:`member_table`'s) when computed."""
    n = len(fragments)
    out = np.zeros(n, bool)
    if n == 0 or min_contained > 1.0 or len(sk_hashes) == 0 or families.max() < 0:
        return out
    if row_of is None:
        row_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(sk_indptr))
    c, h, count, size = member_shingles(families, row_of, sk_hashes, n_labels(families))
    keep = count >= _real_part(size, min_share, min_members)[c]
    scaffold = _held_by_own(families, row_of, sk_hashes, c[keep], h[keep])
    carriers = scaffold >= min_scaffold
    own = np.diff(sk_indptr)
    cand = (scaffold == 0) & (fragments >= 0) & (families >= 0) & (own > 0)
    if carriers.any():
        # the (fragment, shingle) pairs the carriers hold, and how many of each other member's entries are among them
        sel = carriers[row_of] & (fragments[row_of] >= 0)
        inside = _held_by_own(fragments, row_of, sk_hashes, fragments[row_of][sel], sk_hashes[sel], rows_mask=cand)
        out |= cand & (inside >= min_contained * own)
    if fragments.max() < 0:
        return out
    # a family whose members mostly carry its scaffold: a fragment of one text beside them, most of whose
    # members hold none of it, is an appendage
    if one_text is None:
        one_text = one_text_rows(fragments, sk_indptr, sk_hashes, min_contained, max_edit)
    templated = _mostly(families, carriers)
    bare = _mostly(fragments, scaffold == 0)
    return out | (cand & one_text & templated[np.maximum(families, 0)] & bare[np.maximum(fragments, 0)])


def _mostly(labels: NDArray[np.int64], flag: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """bool (k,): clusters at least half of whose members have ``flag``."""
    member = labels >= 0
    k = n_labels(labels)
    return np.bincount(labels[member], weights=flag[member], minlength=k) >= 0.5 * np.maximum(
        np.bincount(labels[member], minlength=k), 1
    )


def one_text_rows(
    labels: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_share: float,
    max_edit: int,
    members: MemberTable | None = None,
) -> NDArray[np.bool_]:
    """bool (n,): the members of fragments that are one text sent many times — the median member has
    ``min_share`` of its shingles in the fragment's core (shingles at least half the members hold) — that
    differ from that text by at most ``max_edit`` shingles outside the core (one changed word's worth).
    :func:`payload_copies` reads it. ``members``: :func:`member_table` of ``labels`` when the caller has it."""
    out = np.zeros(len(labels), bool)
    if len(labels) == 0 or labels.max() < 0 or len(sk_hashes) == 0:
        return out
    row_of, c, h, count, size = members if members is not None else member_table(labels, sk_indptr, sk_hashes)
    core = 2 * count.astype(np.int64) >= size[c]
    in_core = _held_by_own(labels, row_of, sk_hashes, c[core], h[core])
    own = np.diff(sk_indptr)
    member = labels >= 0
    share = in_core / np.maximum(own, 1)
    per = pl.DataFrame({"f": labels[member], "s": share[member]}).group_by("f").agg(pl.col("s").median())
    text = np.zeros(n_labels(labels), bool)
    text[per["f"].to_numpy()] = (per["s"] >= min_share).to_numpy()
    return member & text[np.maximum(labels, 0)] & (own - in_core <= max_edit)


def attach_by_template(
    labels: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_share: float,
    min_shingles: int,
) -> NDArray[np.int64]:
    """Give each noise row the cluster whose template it carries.

    A cluster's *core* is the set of skeleton shingles held by at least half its members. A noise row
    joins the cluster whose core it holds the largest share of, when that share is at least ``min_share``
    and at least ``min_shingles`` core shingles (cores smaller than that take part in nothing). This is
    what the prompt graph misses on big days: a member of a large family whose payload dominates its
    text (a long document, a re-used problem) can have no graph neighbour inside the family, yet it
    carries the family's scaffold. The rule is a share of the row's own shingles and of the core, so it
    does not drift with the size of the day. Ties go to the lowest cluster id.

    ``labels``: int64 (n,) (−1 noise); ``sk_indptr`` / ``sk_hashes``: per-row skeletons (CSR, sorted).
    """
    k = n_labels(labels)
    if k == 0 or min_share > 1.0 or len(sk_hashes) == 0:
        return labels
    core, core_size, uniq_h, row_of = _cores(labels, sk_indptr, sk_hashes, min_shingles)
    if core.nnz == 0:
        return labels
    held = _held(labels < 0, row_of, sk_hashes, uniq_h, core, len(labels)).tocoo()
    share = held.data / np.maximum(core_size[held.col], 1.0)
    ok = (share >= min_share) & (held.data >= min_shingles)
    r, c, s = held.row[ok].astype(np.int64), held.col[ok].astype(np.int64), share[ok]
    if len(r) == 0:
        return labels
    best = fastops.best_per_group(r, s, c)  # per row: best share, ties to the lowest cluster
    out = labels.copy()
    out[r[best]] = c[best]
    return out


REHOME_ROWS = 1 << 18  # rows per slice of :func:`rehome_by_template`


def rehome_by_template(
    labels: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_share: float,
    min_shingles: int,
    min_size_ratio: float,
) -> NDArray[np.int64]:
    """Move a member of a cluster to a much larger cluster whose template it carries besides its own.

    A prompt built from a short scaffold around a popular prompt (a payload that is also sent on its own, and
    inside other campaigns' prompts) is mostly payload to the encoder and to the shingles, so HDBSCAN puts it
    with the payload's other uses: a cluster whose core is the payload. Yet it also carries the scaffold
    that a large cluster's members share with every other payload. Such a member moves to that cluster when
    the core shingles it holds *outside its own cluster's core* are at least ``min_share`` of the other
    cluster's core and at least ``min_shingles`` of them (the :func:`attach_by_template` rule), and that
    cluster has at least ``min_size_ratio`` times the members of its own (the part many prompts share,
    around payloads that vary, is the template; the part a few hundred prompts share, with or without
    something around it, is the payload). A variant fragment whose core contains the larger cluster's core
    does not move (those shingles are its own core), and a member of a large family whose payload is a
    small cluster's text does not move out (the other cluster is not larger). Cores are those before any
    move, in one pass; a cluster every member of which would move keeps them (no cluster is emptied).
    Ties go to the lowest cluster id. ``min_size_ratio`` 0 turns the rule off.
    """
    k = n_labels(labels)
    if k < 2 or min_size_ratio <= 0 or min_share > 1.0 or len(sk_hashes) == 0:
        return labels
    core, core_size, uniq_h, row_of = _cores(labels, sk_indptr, sk_hashes, min_shingles)
    if core.nnz == 0:
        return labels
    member = labels >= 0
    size = np.bincount(labels[member], minlength=k).astype(np.float64)
    found: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
    for lo in range(0, len(labels), REHOME_ROWS):  # rows in slices: the (rows × clusters) product stays small
        hi = min(len(labels), lo + REHOME_ROWS)
        e0, e1 = int(sk_indptr[lo]), int(sk_indptr[hi])
        r, pos = _lookup(member, row_of[e0:e1], sk_hashes[e0:e1], uniq_h)
        outside = np.asarray(core[labels[r], pos]).ravel() == 0  # not in the row's own cluster's core
        r, pos = r[outside] - lo, pos[outside]
        held = (csr_matrix((np.ones(len(r)), (r, pos)), shape=(hi - lo, core.shape[1])) @ core.T).tocoo()
        hr, hc = held.row.astype(np.int64) + lo, held.col.astype(np.int64)
        share = held.data / np.maximum(core_size[hc], 1.0)
        own = labels[hr]
        ok = (share >= min_share) & (held.data >= min_shingles) & (hc != own)
        ok &= size[hc] >= min_size_ratio * size[own]
        found.append((hr[ok], hc[ok], share[ok]))
    hr, hc, share = (np.concatenate(x) for x in zip(*found, strict=True))
    if len(hr) == 0:
        return labels
    best = fastops.best_per_group(hr, share, hc)  # per row: best share, ties to the lowest cluster
    hr, hc = hr[best], hc[best]
    leaving = np.bincount(labels[hr], minlength=k)
    stay = leaving[labels[hr]] >= size[labels[hr]]
    out = labels.copy()
    out[hr[~stay]] = hc[~stay]
    return out


FAMILY_EXCLUSIVE = 0.5  # a family's scaffold shingle: at least this share of the day's holders are its members
FAMILY_QUANTILE = 0.1  # the member a noise row is measured against: this quantile of the members' scores


def attach_to_families(
    fragments: NDArray[np.int64],
    families: NDArray[np.int64],
    sk_indptr: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    min_share: float,
    min_members: int,
    min_shingles: int,
    min_ratio: float,
    members: MemberTable | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Give each noise row the family whose scaffold it carries as much as the family's members do, and the
    fragment of that family with whose real part it shares the most shingles. Returns (fragments,
    families), copies when anything moved.

    A campaign with several re-worded variants, each paraphrased per prompt, around long payloads leaves a
    part of its prompts as noise that :func:`attach_by_template` cannot place: each fragment's core (the
    shingles half its members hold) is one wording, and such a prompt holds too little of any one. Its
    family as a whole knows every wording. The family's *scaffold* is the shingles a real part of it holds
    (``min_share`` of its members and at least ``min_members``, :func:`shared_template`'s rule) and that
    are its own — at least ``FAMILY_EXCLUSIVE`` of the day's rows holding each are its members, so the text
    of a popular prompt some members wrap, or generic wording, is not scaffold. A row's score against a
    family is the sum, over the scaffold shingles it holds, of the share of members holding each (the
    family's wordings weighted by how common they are in it). A noise row joins, among the families it holds
    at least ``min_shingles`` scaffold shingles of and scores at least ``min_ratio`` times the
    ``FAMILY_QUANTILE`` member against (of the members that hold any of the scaffold), the one it scores
    highest against: it carries the family's template about as much as the family's own members do. A
    minority variant's rows score low against the whole family, its wording being a small share of the
    members: a row this leaves out is measured again, in the family it scores highest against, against the
    fragment it would join (the ``FAMILY_QUANTILE`` member of that fragment, when at least half its members,
    and ``min_members``, hold any of the scaffold). ``min_ratio`` 0 turns the rule off. ``members``:
    :func:`member_table` of ``fragments`` when the caller has it.
    """
    n = len(families)
    if n == 0 or min_ratio <= 0 or len(sk_hashes) == 0 or families.max() < 0 or not (families < 0).any():
        return fragments, families
    k = n_labels(families)
    if members is None:
        members = member_table(fragments, sk_indptr, sk_hashes)
    row_of = members[0]
    found = _family_scaffolds(families, row_of, sk_hashes, k, min_share, min_members)
    if found is None:
        return fragments, families
    scaffold, reference, r_noise, pos_noise, score_mem = found
    # each noise row against every family whose scaffold it touches
    x = csr_matrix((np.ones(len(r_noise)), (r_noise, pos_noise)), shape=(n, scaffold.shape[1]))
    ones = scaffold.copy()
    ones.data[:] = 1.0
    score, count_held = (x @ scaffold.T).tocsr(), (x @ ones.T).tocsr()
    if score.nnz == 0:
        return fragments, families
    score.sort_indices()
    count_held.sort_indices()  # the same pattern as ``score`` (every scaffold weight is > 0)
    held = count_held.data
    score = score.tocoo()
    enough = held >= min_shingles
    ok = enough & (score.data >= min_ratio * reference[score.col])

    def place(rows: NDArray[np.int64], fams: NDArray[np.int64]) -> NDArray[np.int64]:
        return _fragment_in_family(fragments, families, sk_hashes, members, rows, fams, min_share, min_members)

    r, f, frag = _best_family(score.row[ok], score.col[ok], score.data[ok], place)
    # a minority variant's rows score low against the whole family (its wording is a small share of the
    # members): a row the family test left out is measured, in the family it scores highest against, against
    # the fragment it would join — when that fragment's members mostly carry the scaffold (a fragment of
    # ordinary prompts that joined the family has no reference of its own)
    rest = enough & ~np.isin(score.row, r)
    if rest.any():
        ref = min_ratio * _fragment_reference(fragments, score_mem, min_members)
        r2, f2, frag2 = _best_family(score.row[rest], score.col[rest], score.data[rest], place, ref)
        r, f, frag = np.r_[r, r2], np.r_[f, f2], np.r_[frag, frag2]
    if len(r) == 0:
        return fragments, families
    fragments, families = fragments.copy(), families.copy()
    fragments[r], families[r] = frag, f
    return fragments, families


def _best_family(
    rows: NDArray[np.int32],
    fams: NDArray[np.int32],
    scores: NDArray[np.float64],
    place: Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.int64]],
    floor: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """For :func:`attach_to_families`: of the (row, family, score) candidates, each row in the family it scores
    highest against (ties to the lowest id), in the fragment ``place`` gives it; with ``floor`` (per fragment)
    only the rows scoring at least their fragment's. Returns (rows, families, fragments)."""
    r, f, s = rows.astype(np.int64), fams.astype(np.int64), scores
    if len(r) == 0:
        return r, f, r.copy()
    best = fastops.best_per_group(r, s, f)
    r, f, s = r[best], f[best], s[best]
    frag = place(r, f)
    if floor is not None:
        keep = (frag >= 0) & (s >= floor[np.maximum(frag, 0)])
        r, f, frag = r[keep], f[keep], frag[keep]
    return r, f, frag


def _fragment_reference(
    fragments: NDArray[np.int64], score_mem: NDArray[np.float64], min_members: int
) -> NDArray[np.float64]:
    """float64 (k,) per fragment the ``FAMILY_QUANTILE`` score (against its family's scaffold) of its members
    that hold any of it, where those are at least half its members and ``min_members``; inf elsewhere."""
    ref, n_car = _carrier_quantile(fragments, score_mem)
    size = np.bincount(fragments[fragments >= 0], minlength=len(ref))
    return np.where((2 * n_car >= size) & (n_car >= min_members), ref, np.inf)


def _family_scaffolds(
    families: NDArray[np.int64],
    row_of: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    k: int,
    min_share: float,
    min_members: int,
) -> tuple[csr_matrix, NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]] | None:
    """For :func:`attach_to_families`: the (families × shingles) member shares of each family's own scaffold,
    each family's reference member score, the (row, column) of the noise rows' entries among those
    shingles, and float64 (n,) each member's score against its family; None when no family has a scaffold."""
    n = len(families)
    c_all, h_all, count_all, size = member_shingles(families, row_of, sk_hashes, k)
    keep = count_all >= _real_part(size, min_share, min_members)[c_all]
    c, h, count = c_all[keep].astype(np.int64), h_all[keep], count_all[keep].astype(np.float64)
    if len(h) == 0:
        return None
    # the day's holders of each candidate shingle: members of every family, and noise rows
    uniq_h, col = fastops.unique_inverse(h)
    col = col.ravel()
    pos = np.minimum(np.searchsorted(uniq_h, h_all), len(uniq_h) - 1)
    hit = uniq_h[pos] == h_all
    held_day = np.bincount(pos[hit], weights=count_all[hit], minlength=len(uniq_h))
    del c_all, h_all, count_all, pos, hit
    r_noise, pos_noise = _lookup(families < 0, row_of, sk_hashes, uniq_h)
    held_day += np.bincount(pos_noise, minlength=len(uniq_h))
    own = count >= FAMILY_EXCLUSIVE * held_day[col]
    c, col, share = c[own], col[own], count[own] / size[c[own]]
    if len(c) == 0:
        return None
    scaffold = csr_matrix((share, (c, col)), shape=(k, len(uniq_h)))
    # each member's score against its own family, and the family's reference member
    r_mem, pos_mem = _lookup(families >= 0, row_of, sk_hashes, uniq_h)
    w = np.asarray(scaffold[families[r_mem], pos_mem]).ravel()
    score_mem = np.bincount(r_mem, weights=w, minlength=n)
    reference, _ = _carrier_quantile(families, score_mem)
    return scaffold, reference, r_noise, pos_noise, score_mem


def _carrier_quantile(
    labels: NDArray[np.int64], score_mem: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per cluster of ``labels`` the ``FAMILY_QUANTILE`` member score among its *carriers* (members scoring
    above 0: members holding none of a scaffold say nothing of how much a member holds; inf where it has
    none), and the number of carriers."""
    k = n_labels(labels)
    carrier = (labels >= 0) & (score_mem > 0)
    ref = (
        pl.DataFrame({"f": labels[carrier], "s": score_mem[carrier]})
        .group_by("f")
        .agg(pl.col("s").quantile(FAMILY_QUANTILE, interpolation="lower"))
    )
    out = np.full(k, np.inf)
    out[ref["f"].to_numpy()] = ref["s"].to_numpy()
    return out, np.bincount(labels[carrier], minlength=k)


def _fragment_in_family(
    fragments: NDArray[np.int64],
    families: NDArray[np.int64],
    sk_hashes: NDArray[np.uint64],
    members: MemberTable,
    rows: NDArray[np.int64],
    fams: NDArray[np.int64],
    min_share: float,
    min_members: int,
) -> NDArray[np.int64]:
    """int64 (len(rows),): for each row joining family ``fams[i]``, the fragment of that family whose real part
    (:func:`shared_template`'s rule) holds most of the row's shingles (ties to the lowest id); a row sharing
    none goes to the family's largest fragment. ``members``: :func:`member_table` of ``fragments``."""
    k = n_labels(fragments)
    row_of, c, h, count, size = members
    fam_of = np.full(k, -1, np.int64)
    member = fragments >= 0
    fam_of[fragments[member]] = families[member]
    # the real parts of the target families' fragments only (a generic shingle in thousands of other fragments
    # would make the product rows × fragments)
    keep = (count >= _real_part(size, min_share, min_members)[c]) & np.isin(fam_of[c], fams)
    c, h = c[keep].astype(np.int64), h[keep]
    # the family's largest fragment, the fallback
    largest = np.full(n_labels(families), -1, np.int64)
    order = np.lexsort((np.arange(k), -np.bincount(fragments[member], minlength=k), fam_of))
    valid = fam_of[order] >= 0
    first = np.r_[True, fam_of[order][1:] != fam_of[order][:-1]] & valid
    largest[fam_of[order][first]] = order[first]
    out = largest[fams]
    if len(c) == 0:
        return out
    uniq_h, col = fastops.unique_inverse(h)
    real = csr_matrix((np.ones(len(c)), (c, col.ravel())), shape=(k, len(uniq_h)))
    mask = np.zeros(len(fragments), bool)
    mask[rows] = True
    r, pos = _lookup(mask, row_of, sk_hashes, uniq_h)
    index = np.full(len(mask), -1, np.int64)
    index[rows] = np.arange(len(rows))
    x = csr_matrix((np.ones(len(r)), (index[r], pos)), shape=(len(rows), len(uniq_h)))
    held = (x @ real.T).tocoo()
    same = fam_of[held.col] == fams[held.row]
    hr, hc, hv = held.row[same].astype(np.int64), held.col[same].astype(np.int64), held.data[same]
    if len(hr):
        best = fastops.best_per_group(hr, hv, hc)
        out[hr[best]] = hc[best]
    return out
