"""Flagged campaign families joined by the scaffold lines they lend each other.

An operator re-words its template into variants and mixes lines between them: some prompts of one variant
carry a line of another's scaffold. When the variants share neither much wording nor a meaning the encoder
reads (a one-line scaffold beside a long one, a translation) nor senders (an account pool per variant), the
family stages (:mod:`.families`) leave each variant its own family, and each is flagged on its own. The
lines they lend each other say they are one campaign.

A shingle is *lent* by template group b to template group a when it is in b's core (``LINE_LENDER`` of its
members), carried by a minority of a's members (``LINE_BORROWER``: more would make it a part both share,
which the template stage already weighs), by ``LINE_MIN_MEMBERS`` members of each, and is theirs: at least
``LINE_EXCLUSIVE`` of the day's rows holding it are in a or b (generic wording, a popular prompt some
members wrap, lend nothing). The line must be carried by a's own prompts: the median member of a holding
it holds at least ``LINE_OWN_CORE`` of a's own core — a mixed group that took in a few of b's prompts holds
b's lines through them. And each group must be a real part of its family (``LINE_MIN_PART`` of its rows):
a sliver of ordinary or other rows that joined a family does not speak for it (on a generated 1M day, a
group of 598 document prompts, 157 of them another campaign's, inside a 15,803-prompt persona family
joined the persona campaign to that other campaign before this rule). Evidence between two families:
min(1, the most shingles one of their template groups lends another (either way) / ``LINE_FULL``); a pair
below ``family_min_sim`` is no evidence either way (an operator's variants each borrow from one other:
with three, A from B, B from C and C from A, and a short line lent is few shingles), and groups of families
join by average linkage when the pairs lending a line cover ``LINE_COVERAGE`` of their pairs (by rows): a
third variant borrowing from one of two joined variants of its size joins them.

Only *flagged* families are joined. Ordinary template families lend each other lines too — a jailbreak
community's prompts are re-worded copies of each other — and a family joined from several of them is spread
over more accounts than any one: on the public evaluation's day without account ages, ten jailbreak families
joined this way before scoring were flagged as one (precision 0.9995 → 0.975). Joining after the decision
changes which family a flagged prompt is in; the run keeps it only when the decision over the joined
families flags exactly the same prompts (``clusterer.run.stages.variants_stage``).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..text.skeleton import Skeletons
from .families import average_linkage
from .labels import n_labels
from .refine import member_table

LINE_LENDER = 0.5
LINE_BORROWER = (0.1, 0.5)
LINE_MIN_MEMBERS = 5
LINE_EXCLUSIVE = 0.5
LINE_FULL = 10.0  # lent shingles counted as full evidence (a line of about ten words)
LINE_MAX_LENDERS = 8  # a shingle in the cores of more template groups than this is generic: it proposes no pair
LINE_OWN_CORE = 0.5  # the borrower's members carrying the line hold at least this share of its own core (median)
LINE_MIN_PART = 0.1  # a template group speaks for its family when it holds at least this share of the family's rows
LINE_COVERAGE = 0.5  # two groups of families join when pairs lending a full line cover this share of their pairs


def lent_shingles(groups: NDArray[np.int64], sk: Skeletons) -> pl.DataFrame:
    """Per ordered pair of template groups (``a`` borrows from ``b``) the number of shingles ``b`` lends ``a``
    (``len``), by the rule in the module docstring; a pair counts only when a's own prompts carry the line
    (:func:`_borrowed_by_own`). ``groups``: int64 (n,) template group per row (−1: none); every row counts
    among the day's holders of a shingle."""
    empty = pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64, "len": pl.UInt32})
    k = n_labels(groups)
    if k < 2 or len(sk.hashes) == 0:
        return empty
    row_of, c, h, count, size = member_table(groups, sk.indptr, sk.hashes)
    share = count / np.maximum(size[c], 1)
    enough = count >= LINE_MIN_MEMBERS
    lend = enough & (share >= LINE_LENDER)
    lo, hi = LINE_BORROWER
    take = enough & (share >= lo) & (share < hi)
    borrow = pl.DataFrame({"a": c[take].astype(np.int64), "h": h[take], "na": count[take]})
    lenders = pl.DataFrame({"b": c[lend].astype(np.int64), "h": h[lend], "nb": count[lend]})
    lenders = lenders.filter(pl.col("h").is_in(borrow["h"].implode()) & (pl.len().over("h") <= LINE_MAX_LENDERS))
    pairs = borrow.join(lenders, on="h").filter(pl.col("a") != pl.col("b"))
    if pairs.height == 0:
        return empty
    # the day's rows holding each candidate shingle (each row's shingles are distinct)
    every = pl.Series("h", sk.hashes)
    held = every.filter(every.is_in(pairs["h"].unique().implode())).value_counts(name="held")
    pairs = pairs.join(held, on="h").filter(pl.col("na") + pl.col("nb") >= LINE_EXCLUSIVE * pl.col("held"))
    if pairs.height == 0:
        return empty
    core = pl.DataFrame({"a": c[lend].astype(np.int64), "h": h[lend]})  # each group's own core
    own = _borrowed_by_own(pairs.select("a", "b", "h"), core, groups, row_of, sk.hashes)
    return pairs.join(own, on=["a", "b"]).group_by("a", "b").len().sort("a", "b")


def _borrowed_by_own(
    pairs: pl.DataFrame,
    core: pl.DataFrame,
    groups: NDArray[np.int64],
    row_of: NDArray[np.int64],
    hashes: NDArray[np.uint64],
) -> pl.DataFrame:
    """The (a, b) pairs of ``pairs`` (a, b, h: shingle h lent by b to a) whose line a's own prompts carry: the
    median member of a holding any shingle b lends it holds at least ``LINE_OWN_CORE`` of a's own core
    (``core``: a, h with h in a's core; an empty core disqualifies). A group that took in some of b's prompts
    (a few rows of another campaign inside a mixed group) holds b's lines through them, not through prompts
    of its own."""
    borrowers = pairs["a"].unique().to_numpy()
    sel = np.isin(groups[row_of], borrowers)
    entries = pl.DataFrame({"r": row_of[sel], "a": groups[row_of[sel]], "h": hashes[sel]})
    size = core.group_by("a").len().rename({"len": "core"})
    carriers = entries.join(pairs, on=["a", "h"]).select("r", "a", "b").unique()
    held = entries.join(core, on=["a", "h"]).group_by("r").len().rename({"len": "own"})
    return (
        carriers.join(held, on="r", how="left")
        .join(size, on="a", how="left")
        .with_columns((pl.col("own").fill_null(0) / pl.col("core")).fill_null(0.0).alias("frac"))
        .group_by("a", "b")
        .agg(pl.col("frac").median())
        .filter(pl.col("frac") >= LINE_OWN_CORE)
        .select("a", "b")
    )


def join_flagged_variants(
    families: NDArray[np.int64],
    groups: NDArray[np.int64],
    flagged: NDArray[np.bool_],
    sk: Skeletons,
    min_sim: float,
) -> tuple[NDArray[np.int64], int]:
    """Flagged families joined by the lines their template groups lend each other (module docstring).

    ``families``: int64 (n,) family per row (−1 noise); ``groups``: int64 (n,) template group per row (each
    inside one family; a family's row without one, −1, takes no part); ``flagged``: bool (k,) per family.
    Returns (int64 (k,) the family each family joins — the smallest id of its group — and the number of
    merges)."""
    k = n_labels(families)
    ident = np.arange(k, dtype=np.int64)
    if int(flagged.sum()) < 2:
        return ident, 0
    # (a row a stream window attached to a family by the campaign it carries has no template group)
    in_flagged = (families >= 0) & flagged[np.maximum(families, 0)] & (groups >= 0)
    lent = lent_shingles(np.where(in_flagged, groups, -1), sk)
    if lent.height == 0:
        return ident, 0
    family_of = np.full(n_labels(groups), -1, np.int64)
    family_of[groups[in_flagged]] = families[in_flagged]
    size = np.bincount(families[families >= 0], minlength=k).astype(np.float64)
    # a template group that is a sliver of its family (rows of other kinds that joined it) does not speak for it
    part = np.bincount(groups[in_flagged], minlength=len(family_of)) / np.maximum(size[np.maximum(family_of, 0)], 1.0)
    real = (part[lent["a"].to_numpy()] >= LINE_MIN_PART) & (part[lent["b"].to_numpy()] >= LINE_MIN_PART)
    lent = lent.filter(pl.Series(real))
    if lent.height == 0:
        return ident, 0
    fa, fb = family_of[lent["a"].to_numpy()], family_of[lent["b"].to_numpy()]
    ev = (
        pl.DataFrame({"x": np.minimum(fa, fb), "y": np.maximum(fa, fb), "n": lent["len"].to_numpy()})
        .filter(pl.col("x") != pl.col("y"))
        .group_by("x", "y")
        .agg(pl.col("n").max())
        .sort("x", "y")
    )
    if ev.height == 0:
        return ident, 0
    # a pair lending less than a line is no evidence either way: an operator's variants each borrow from one
    # other (three variants: A from B, B from C, C from A), and a short line lent is few shingles
    sim = np.minimum(1.0, ev["n"].to_numpy() / LINE_FULL)
    strong = sim >= min_sim
    x, y = ev["x"].to_numpy()[strong], ev["y"].to_numpy()[strong]
    return average_linkage(k, x, y, sim[strong], min_sim, np.maximum(size, 1.0), LINE_COVERAGE)


def lent_between_campaigns(
    families: NDArray[np.int64],
    groups: NDArray[np.int64],
    campaign_of: dict[int, str],
    sk: Skeletons,
    min_sim: float,
) -> list[list[str]]:
    """Campaigns whose flagged families lend each other scaffold lines, as groups of two or more campaign IDs
    (each sorted; groups sorted): a ``clusterer stream`` window's form of :func:`join_flagged_variants`, with
    each campaign in the place of a family (its flagged families' rows, carried exemplars included) and
    nothing joined or decided again — the campaigns are named as one. ``families``: int64 (n,) family per
    row (−1 noise); ``groups``: int64 (n,) template group per row (−1 none); ``campaign_of``: flagged family
    → its campaign ID."""
    names = sorted(set(campaign_of.values()))
    if len(names) < 2:
        return []
    code = {c: i for i, c in enumerate(names)}
    of_family = np.full(n_labels(families), -1, np.int64)
    for f, c in campaign_of.items():
        of_family[f] = code[c]
    camp = np.where(families >= 0, of_family[np.maximum(families, 0)], -1)
    joined, merges = join_flagged_variants(camp, groups, np.ones(len(names), bool), sk, min_sim)
    if merges == 0:
        return []
    parts: dict[int, list[str]] = {}
    for i, j in enumerate(joined.tolist()):
        parts.setdefault(j, []).append(names[i])
    return sorted(sorted(p) for p in parts.values() if len(p) > 1)
