"""Short wrappers: a one-line scaffold at the edge of a payload that carries the rest of the prompt.

An operator's short variant ("Solve. Box the final answer." above a maths problem, "TL;DR in five bullets:"
below a document, "[INST] Implement this, with tests. … [/INST]" around a coding task) leaves one to four
word-3-gram shingles of scaffold, while its payload is a whole text: often one the day's ordinary users send
too, or one drawn from a public problem set. Such prompts embed as their payloads and stay noise, or join the
payload's other uses, and no template rule (four shared shingles) reaches them.

What they keep is position: the wrapper's shingles sit within the first or last ``edge_tokens`` tokens of
every prompt that holds them, around text that differs from prompt to prompt. The prompts looked at are the
noise and the members of families not flagged (where a wrapped popular prompt sits with its other uses). An
*edge shingle* of such a prompt is a skeleton shingle (recurring over the day) found in its first or last
``edge_tokens`` tokens (at most half its tokens each: the two edges never overlap), in a prompt that has at
least ``edge_tokens + EDGE_MIN_PAYLOAD`` tokens (a short question is all edge). A shingle proposes a group
when it is an edge shingle of at least ``min_rows`` of them, from at least ``EDGE_MIN_ACCOUNTS`` accounts,
around payloads that differ (at least ``EDGE_MIN_TEXTS`` distinct texts and no text in more than
``EDGE_MAX_ONE_TEXT`` of them: a scale-free test, since on a day of millions a payload pool of a few thousand
problems is sent several times over, while copies of one popular prompt are one text), scattered (no family holds more
than ``EDGE_MAX_ONE_FAMILY`` of them: a family that holds most has the line as its own template), and at an
edge in at least ``EDGE_MIN_AT_EDGE`` of the prompts holding it anywhere (a filler phrase such as "Keep it
professional." turns up mid-text as well). A group on a shingle a flagged family holds in half its members
joins that family when ``EDGE_OWNER_SENDERS`` of its prompts come from that family's senders (the prompts are
left over from that campaign: the family keeps its campaign ID), and is a family of its own when not (another
campaign's prompts that share a common line the family's paraphrases use). When several flagged families hold
the line (at a million prompts a wrapper re-worded per prompt, "Note: …", "Thanks. …", can be flagged once per
re-wording), the group joins the one whose senders sent the most of it, or none. Each prompt joins the group of its
edge shingle held by the most prompts, so every re-wording of one wrapper that keeps one shingle ("solve. box
the …") is one group, and the rows each shingle kept must pass the rule again (a shingle whose other holders
left for a more held one can be left with one account's prompts).

Forming a group decides nothing: it is a family like any other (or part of the flagged family that owns its
line), scored by the campaign decision on who sends it. The run keeps only the groups the decision flags
(:func:`clusterer.run.stages.wrappers_stage`), so an ordinary opening that many users share ("Write a python
function to …") is left where it was.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..text.skeleton import Skeletons, shingle_sets

EDGE_MIN_PAYLOAD = 4  # tokens beyond the edge window a prompt must have (else it is all edge)
EDGE_MIN_ACCOUNTS = 5  # distinct accounts holding a group's shingle at an edge
EDGE_MIN_TEXTS = 8  # distinct texts among them (a wrapper goes around differing payloads) ...
EDGE_MAX_ONE_TEXT = 0.1  # ... and no one text in more than this share of them (two copies always allowed)
EDGE_MIN_AT_EDGE = 0.9  # share of the prompts read that hold the shingle anywhere and hold it at an edge
EDGE_MAX_ONE_FAMILY = 0.5  # the most of a group's rows one family may hold (else the wrapper is its template)
EDGE_OWNER_SENDERS = 1 / 3  # a group joins the flagged family whose line it is when this share of it is its senders
EDGE_BLOCK = 200_000  # rows tokenised at a time (a token list per row of a whole 1M day would hold gigabytes)


def edge_pairs(
    rows: NDArray[np.int64], texts: pl.Series, sk: Skeletons, ngram: int, edge_tokens: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """For the ``rows`` long enough to have a payload beyond their edges (``edge_tokens`` + EDGE_MIN_PAYLOAD
    tokens): (``row``, ``h``) the skeleton shingles each holds within its first or last ``edge_tokens``
    tokens — at most half its tokens each, so the two edges never overlap and a phrase in the middle of a
    short prompt is not at an edge — and (``row``, ``h``) every skeleton shingle of those rows."""
    edge_parts, held_parts = [pl.DataFrame(schema={"row": pl.Int64, "h": pl.UInt64})], []
    for start in range(0, len(rows), EDGE_BLOCK):
        block = rows[start : start + EDGE_BLOCK]
        words = pl.DataFrame({"w": texts.gather(block).str.split(" ")}).select(
            pl.col("w").list.eval(pl.element().filter(pl.element() != ""))
        )
        n_words = words["w"].list.len().to_numpy()
        long = n_words >= edge_tokens + EDGE_MIN_PAYLOAD
        if not long.any():
            continue
        block, words = block[long], words.filter(pl.Series(long))
        width = pl.min_horizontal(pl.lit(edge_tokens), pl.col("w").list.len() // 2)
        for edge in (pl.col("w").list.head(width), pl.col("w").list.tail(width)):
            edge_text = words.select(edge.list.join(" "))["w"]
            indptr, hashes = shingle_sets(edge_text, ngram, sk.common_cores)
            edge_parts.append(pl.DataFrame({"row": np.repeat(block, np.diff(indptr)), "h": hashes}))
        held_parts.append(skeleton_pairs(block, sk))
    held = pl.concat(held_parts) if held_parts else pl.DataFrame(schema={"row": pl.Int64, "h": pl.UInt64})
    # only recurring shingles (the row's skeleton): wording seen once is payload
    return pl.concat(edge_parts).unique().join(held, on=["row", "h"], how="semi"), held


def skeleton_pairs(rows: NDArray[np.int64], sk: Skeletons) -> pl.DataFrame:
    """(``row``, ``h``): every skeleton shingle of each of ``rows``."""
    starts, ends = sk.indptr[rows], sk.indptr[rows + 1]
    counts = ends - starts
    idx = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    return pl.DataFrame({"row": np.repeat(rows, counts), "h": sk.hashes[idx]})


def wrapper_groups(
    labels: NDArray[np.int64],
    eligible: NDArray[np.bool_],
    texts: pl.Series,
    sk: Skeletons,
    accounts: NDArray[np.int64],
    keys: NDArray[np.uint64],
    ngram: int,
    edge_tokens: int,
    min_rows: int,
    owners: pl.DataFrame | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """int64 (m,): a wrapper group per ``eligible`` row that joins one, numbered from 0; −1 elsewhere.

    ``labels``: int64 (m,) family per row (−1 noise); ``eligible``: bool (m,) the rows a group may take (noise,
    and the members of families not flagged: a short wrapper around a popular prompt sits with the prompt's
    other uses). A group's rows are scattered: no family holds more than ``EDGE_MAX_ONE_FAMILY`` of them (a
    family holding most has the line as its own template). ``texts``: the rows' normalised texts (``sk``
    their skeletons); ``accounts`` / ``keys``: int64 account code and uint64 text key per row; ``owners``
    (``h``, ``owner``): shingles a flagged family holds in half its members, and that family (a shingle may
    have several). Returns the group per row and, per group, the family that owns its shingle
    (−1: none): a group on a flagged family's own line is that campaign's left-over prompts, not a new one.
    The rule is the module docstring's; it is checked on the rows holding a shingle at an edge, and again on
    those that chose it."""
    out = np.full(len(labels), -1, np.int64)
    none = (out, np.zeros(0, np.int64))
    pairs, held = edge_pairs(np.flatnonzero(eligible).astype(np.int64), texts, sk, ngram, edge_tokens)
    if pairs.height == 0:
        return none
    # over every eligible row long enough: a filler phrase is mid-text in rows with no edge shingle
    anywhere = held.join(pairs.select("h").unique(), on="h", how="semi").group_by("h").agg(pl.len().alias("anywhere"))
    at = pairs["row"].to_numpy()
    pairs = pairs.with_columns(pl.Series("acc", accounts[at]), pl.Series("key", keys[at]), pl.Series("fam", labels[at]))
    stats = (
        _passing(pairs, min_rows).join(anywhere, on="h").filter(pl.col("n") >= EDGE_MIN_AT_EDGE * pl.col("anywhere"))
    )
    if stats.height == 0:
        return none
    # each row to its most held candidate (ties: the smaller hash), then the rule again on the rows each kept
    chosen = (
        pairs.join(stats.select("h", "n"), on="h")
        .sort(["row", "n", "h"], descending=[False, True, False])
        .unique("row", keep="first", maintain_order=True)
    )
    chosen = chosen.join(_passing(chosen.drop("n"), min_rows).select("h"), on="h", how="semi")
    if chosen.height == 0:
        return none
    if owners is not None:
        owners = _owner_by_senders(chosen, owners, labels, accounts)
    number = chosen.select(pl.col("h").rank("dense") - 1)["h"].to_numpy().astype(np.int64)
    out[chosen["row"].to_numpy()] = number
    lines = pl.DataFrame({"h": chosen["h"], "g": number}).unique("g").sort("g")
    owner = lines.join(owners, on="h", how="left")["owner"] if owners is not None else None
    owned = owner.fill_null(-1).to_numpy().astype(np.int64) if owner is not None else np.full(lines.height, -1)
    return out, owned


def _owner_by_senders(
    chosen: pl.DataFrame, owners: pl.DataFrame, labels: NDArray[np.int64], accounts: NDArray[np.int64]
) -> pl.DataFrame:
    """(``h``, ``owner``): for each shingle of ``chosen`` (``row``, ``h``) on a flagged family's line
    (``owners``), the owning family that the most of its rows' accounts sent, when at least EDGE_OWNER_SENDERS
    of them did. The left-over prompts of a family's wrapper come from its own pool (single-use accounts
    aside); other campaigns' prompts that share a common line with it (a filler its paraphrases use) come
    from theirs. A line several flagged families hold (one wrapper re-worded per prompt, each re-wording
    flagged on its own) goes to the one whose senders sent the group, or to none."""
    on_owned = chosen.join(owners, on="h")
    if on_owned.height == 0:
        return pl.DataFrame(schema={"h": pl.UInt64, "owner": pl.Int64})
    fam = np.flatnonzero(labels >= 0)
    senders = (
        pl.DataFrame({"acc": accounts[fam], "owner": labels[fam]}).unique().with_columns(pl.lit(True).alias("sent"))
    )
    share = (
        on_owned.with_columns(pl.Series("acc", accounts[on_owned["row"].to_numpy()]))
        .join(senders, on=["acc", "owner"], how="left")
        .group_by("h", "owner")
        .agg(pl.col("sent").fill_null(False).mean().alias("share"))
    )
    return (
        share.filter(pl.col("share") >= EDGE_OWNER_SENDERS)
        .sort(["h", "share", "owner"], descending=[False, True, False])
        .unique("h", keep="first")
        .select("h", "owner")
    )


def _passing(pairs: pl.DataFrame, min_rows: int) -> pl.DataFrame:
    """Per shingle ``h`` of ``pairs`` (``row``, ``h``, ``acc``, ``key``, ``fam``) held by enough rows, accounts
    and distinct texts, scattered over families: ``h``, ``n`` (its rows)."""
    one_family = (
        pairs.filter(pl.col("fam") >= 0)
        .group_by("h", "fam")
        .agg(pl.len().alias("in_one"))
        .group_by("h")
        .agg(pl.col("in_one").max())
    )
    one_text = pairs.group_by("h", "key").agg(pl.len().alias("top")).group_by("h").agg(pl.col("top").max())
    return (
        pairs.group_by("h")
        .agg(pl.len().alias("n"), pl.col("acc").n_unique().alias("acc"), pl.col("key").n_unique().alias("texts"))
        .join(one_family, on="h", how="left")
        .join(one_text, on="h")
        .filter(
            (pl.col("n") >= min_rows)
            & (pl.col("acc") >= EDGE_MIN_ACCOUNTS)
            & (pl.col("texts") >= EDGE_MIN_TEXTS)
            & (pl.col("top") <= pl.max_horizontal(pl.lit(2), EDGE_MAX_ONE_TEXT * pl.col("n")))
            & (pl.col("in_one").fill_null(0) <= EDGE_MAX_ONE_FAMILY * pl.col("n"))
        )
        .select("h", "n")
    )
