"""Short wrappers: a one-line scaffold at the edge of a payload that carries the rest of the prompt.

An operator's short variant ("Solve. Box the final answer." above a maths problem, "TL;DR in five bullets:"
below a document, "[INST] Implement this, with tests. … [/INST]" around a coding task) leaves one to four
word-3-gram shingles of scaffold, while its payload is a whole text: often one the day's ordinary users send
too, or one drawn from a public problem set. Such prompts embed as their payloads and stay noise, or join the
payload's other uses, and no template rule (four shared shingles) reaches them.

What they keep is position: the wrapper's shingles sit within the first or last ``edge_tokens`` tokens of every
prompt that holds them, around text that differs from prompt to prompt. The prompts looked at are the noise
and the members of families not flagged (where a wrapped popular prompt sits with its other uses). An *edge
shingle* of such a prompt is a skeleton shingle (recurring over the day) found in its first or last
``edge_tokens`` tokens, in a prompt that has at least ``edge_tokens + EDGE_MIN_PAYLOAD`` tokens (a short
question is all edge). A shingle proposes a group when it is an edge shingle of at least ``min_rows`` of
them, from at least ``EDGE_MIN_ACCOUNTS`` accounts, around payloads that differ (at least
``EDGE_MIN_VARIETY`` distinct texts), scattered (no family holds more than ``EDGE_MAX_ONE_FAMILY`` of them:
a family that holds most has the line as its own template), and at an edge in at least ``EDGE_MIN_AT_EDGE``
of the prompts holding it anywhere (a filler phrase such as "Keep it professional." turns up mid-text as
well). Each prompt joins the group of its edge shingle held by the most prompts, so every re-wording of one
wrapper that keeps one shingle ("solve. box the …") is one group.

Forming a group decides nothing: it is a family like any other, scored by the campaign decision on who sends
it. The run keeps only the groups the decision flags (:func:`clusterer.run.stages.wrappers_stage`), so an
ordinary opening that many users share ("Write a python function to …") is left as noise it was.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..text.skeleton import Skeletons, shingle_sets

EDGE_MIN_PAYLOAD = 4  # tokens beyond the edge window a prompt must have (else it is all edge)
EDGE_MIN_ACCOUNTS = 5  # distinct accounts holding a group's shingle at an edge
EDGE_MIN_VARIETY = 0.8  # share of distinct texts among them (a wrapper goes around differing payloads)
EDGE_MIN_AT_EDGE = 0.9  # share of the noise prompts holding the shingle that hold it at an edge
EDGE_MAX_ONE_FAMILY = 0.5  # the most of a group's rows one family may hold (else the wrapper is its template)


def edge_pairs(
    rows: NDArray[np.int64], texts: pl.Series, sk: Skeletons, ngram: int, edge_tokens: int
) -> tuple[pl.DataFrame, NDArray[np.int64]]:
    """(``row``, ``h``): the skeleton shingles each of ``rows`` holds within its first or last ``edge_tokens``
    tokens (unique pairs), for the rows long enough to have a payload beyond them (returned too)."""
    empty = pl.DataFrame(schema={"row": pl.Int64, "h": pl.UInt64})
    if len(rows) == 0:
        return empty, rows
    words = texts.gather(rows).str.split(" ").list.eval(pl.element().filter(pl.element() != ""))
    long = (words.list.len() >= edge_tokens + EDGE_MIN_PAYLOAD).to_numpy()
    rows, words = rows[long], words.filter(pl.Series(long))
    if len(rows) == 0:
        return empty, rows
    parts = []
    for edge in (words.list.head(edge_tokens), words.list.tail(edge_tokens)):
        indptr, hashes = shingle_sets(edge.list.join(" "), ngram, sk.common_cores)
        parts.append(pl.DataFrame({"row": np.repeat(rows, np.diff(indptr)), "h": hashes}))
    edge_df = pl.concat(parts).unique()
    # only recurring shingles (the row's skeleton): wording seen once is payload
    held = skeleton_pairs(rows, sk)
    return edge_df.join(held, on=["row", "h"], how="semi"), rows


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
) -> NDArray[np.int64]:
    """int64 (m,): a wrapper group per ``eligible`` row that joins one, numbered from 0; −1 elsewhere.

    ``labels``: int64 (m,) family per row (−1 noise); ``eligible``: bool (m,) the rows a group may take (noise,
    and the members of families not flagged: a short wrapper around a popular prompt sits with the prompt's
    other uses). A group's rows are scattered: no family holds more than ``EDGE_MAX_ONE_FAMILY`` of the rows
    holding its shingle at an edge (a family holding most of them has it as its own template). ``texts``: the
    rows' normalised texts (``sk`` their skeletons); ``accounts`` / ``keys``: int64 account code and uint64
    text key per row. The rule is the module docstring's."""
    out = np.full(len(labels), -1, np.int64)
    rows = np.flatnonzero(eligible).astype(np.int64)
    pairs, long = edge_pairs(rows, texts, sk, ngram, edge_tokens)
    if pairs.height == 0:
        return out
    anywhere = (  # over every noise row long enough: a filler phrase is mid-text in rows with no edge shingle
        skeleton_pairs(long, sk)
        .join(pairs.select("h").unique(), on="h", how="semi")
        .group_by("h")
        .agg(pl.len().alias("anywhere"))
    )
    at = pairs["row"].to_numpy()
    one_family = (
        pairs.with_columns(pl.Series("fam", labels[at]))
        .filter(pl.col("fam") >= 0)
        .group_by("h", "fam")
        .agg(pl.len().alias("in_one"))
        .group_by("h")
        .agg(pl.col("in_one").max())
    )
    stats = (
        pairs.with_columns(pl.Series("acc", accounts[at]), pl.Series("key", keys[at]))
        .group_by("h")
        .agg(pl.len().alias("n"), pl.col("acc").n_unique().alias("acc"), pl.col("key").n_unique().alias("texts"))
        .join(anywhere, on="h")
        .join(one_family, on="h", how="left")
        .filter(
            (pl.col("n") >= min_rows)
            & (pl.col("acc") >= EDGE_MIN_ACCOUNTS)
            & (pl.col("texts") >= EDGE_MIN_VARIETY * pl.col("n"))
            & (pl.col("n") >= EDGE_MIN_AT_EDGE * pl.col("anywhere"))
            & (pl.col("in_one").fill_null(0) <= EDGE_MAX_ONE_FAMILY * pl.col("n"))
        )
        .select("h", "n")
    )
    if stats.height == 0:
        return out
    # each row to its most held candidate (ties: the smaller hash), then groups of min_rows or more
    chosen = (
        pairs.join(stats, on="h")
        .sort(["row", "n", "h"], descending=[False, True, False])
        .unique("row", keep="first", maintain_order=True)
    )
    chosen = chosen.filter(pl.len().over("h") >= min_rows)
    if chosen.height == 0:
        return out
    group = chosen.select(pl.col("h").rank("dense") - 1)["h"].to_numpy().astype(np.int64)
    out[chosen["row"].to_numpy()] = group
    return out
