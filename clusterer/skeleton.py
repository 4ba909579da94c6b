"""Template skeletons: which parts of each prompt are the day's recurring boilerplate.

Word n-gram shingles of the normalised text are hashed (xxh3-64 per distinct token, combined per window
with a fixed mixer, so hashes are the same on every machine). Each shingle's document frequency over the
day is a polars group-by, with no Python loop per prompt. A prompt's *skeleton* is its set of shingles
seen in at least ``min_df`` prompts and at most ``max_df`` (a share) of them: recurring wording is
template, wording seen once is payload, and wording in nearly everything is not a template either.

Per prompt the stage also gives its template coverage (share of its shingles that are skeleton) and a
*scaffold view*: the text with every token outside the skeleton replaced by one ``{…}`` per run, which
is what a person reads as "the template" and what the embedding stage can look at instead of the payload.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import xxhash
from numpy.typing import NDArray

from .config import SkeletonConfig
from .reference import mix64 as _mix

SLOT = "{…}"
SLOT_BUCKETS = 1 << 20
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass(frozen=True, slots=True)
class Skeletons:
    """Per-prompt skeletons in CSR form, aligned with the texts given.

    ``indptr``: int64 (n + 1,); ``hashes``: uint64 (nnz,) each row's skeleton shingles, sorted, unique;
    ``n_shingles``: int32 (n,) all distinct shingles of the row; ``coverage``: float32 (n,) share of the
    row's shingles that are skeleton; ``view``: the scaffold view text per row; ``slot_indptr`` /
    ``slot_tokens``: CSR of uint32 buckets (token hash mod 2^20) of each row's payload tokens, the words
    outside the skeleton.
    """

    indptr: NDArray[np.int64]
    hashes: NDArray[np.uint64]
    n_shingles: NDArray[np.int32]
    coverage: NDArray[np.float32]
    view: pl.Series
    slot_indptr: NDArray[np.int64]
    slot_tokens: NDArray[np.uint32]

    @property
    def sizes(self) -> NDArray[np.int32]:
        return np.diff(self.indptr).astype(np.int32)


def _tokens(texts: pl.Series) -> pl.DataFrame:
    """One row per token: row (u32), pos (u32 within row), tok (str), th (u64 token hash)."""
    df = (
        pl.DataFrame({"t": texts.fill_null("")})
        .with_row_index("row")
        .select("row", pl.col("t").str.split(" ").alias("tok"))
        .explode("tok")
        .filter(pl.col("tok").is_not_null() & (pl.col("tok") != ""))
        .with_columns(pl.int_range(0, pl.len(), dtype=pl.UInt32).over("row").alias("pos"))
    )
    vocab = df.select(pl.col("tok").unique())
    h = xxhash.xxh3_64_intdigest
    vocab = vocab.with_columns(pl.Series("th", [h(t.encode("utf-8")) for t in vocab["tok"].to_list()], dtype=pl.UInt64))
    return df.join(vocab, on="tok", how="left", maintain_order="left")


def _windows(row: NDArray[np.uint32], th: NDArray[np.uint64], n: int) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """Hash of the n-token window starting at every token, and whether that window counts.

    A window counts when it fits inside its row, or when it starts a row shorter than n (then it is the
    whole row), so short prompts still get one shingle.
    """
    m = len(th)
    g = th.copy()
    same_len = np.ones(m, dtype=np.int64)
    for s in range(1, n):
        nxt = np.zeros(m, dtype=np.uint64)
        ok = np.zeros(m, dtype=bool)
        if m > s:
            ok[:-s] = row[s:] == row[:-s]
            nxt[:-s] = th[s:]
        g = np.where(ok, _mix(g * _M1 + nxt * _M2 + np.uint64(s)), g)
        same_len += ok
    full = same_len == n
    row_start = np.ones(m, dtype=bool)
    row_start[1:] = row[1:] != row[:-1]
    row_len = np.bincount(row.astype(np.int64))[row] if m else np.zeros(0, np.int64)
    short_start = row_start & (row_len < n)
    return g, full | short_start


def shingle_sets(texts: pl.Series, ngram: int) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """All distinct shingles of each text, no document-frequency filter (for assigning single prompts).

    Returns CSR ``(indptr int64 (n + 1,), hashes uint64)``, hashes sorted within each row.
    """
    tok = _tokens(texts)
    row = tok["row"].to_numpy()
    g, valid = _windows(row, tok["th"].to_numpy(), ngram)
    pairs = pl.DataFrame({"row": row[valid], "g": g[valid]}).unique().sort(["row", "g"])
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs["row"].to_numpy().astype(np.int64), minlength=len(texts)), out=indptr[1:])
    return indptr, pairs["g"].to_numpy().astype(np.uint64)


def build_skeletons(texts: pl.Series, cfg: SkeletonConfig) -> Skeletons:
    """Skeleton of every text (already normalised; '' rows get empty skeletons)."""
    n_rows = len(texts)
    tok = _tokens(texts)
    row = tok["row"].to_numpy()
    th = tok["th"].to_numpy()
    g, valid = _windows(row, th, cfg.ngram)
    win = pl.DataFrame({"row": row, "g": g, "valid": valid}).with_row_index("i")
    pairs = win.filter(pl.col("valid")).select("row", "g").unique()
    n_docs = max(int(np.count_nonzero(np.bincount(row, minlength=n_rows))) if len(row) else 0, 1)
    max_df = max(int(cfg.max_df * n_docs), cfg.min_df)
    df_counts = pairs.group_by("g").agg(pl.len().alias("df"))
    keep = df_counts.filter((pl.col("df") >= cfg.min_df) & (pl.col("df") <= max_df)).select("g")
    skel_pairs = pairs.join(keep, on="g", how="semi").sort(["row", "g"])
    srow = skel_pairs["row"].to_numpy().astype(np.int64)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(srow, minlength=n_rows), out=indptr[1:])
    n_sh = np.bincount(pairs["row"].to_numpy().astype(np.int64), minlength=n_rows).astype(np.int32)
    coverage = (np.diff(indptr) / np.maximum(n_sh, 1)).astype(np.float32)

    # scaffold view: a token is template when any skeleton window covers it
    in_skel = win.join(keep.with_columns(pl.lit(True).alias("s")), on="g", how="left").sort("i")["s"]
    start = (in_skel.fill_null(False).to_numpy()) & valid
    covered = start.copy()
    for s in range(1, cfg.ngram):
        covered[s:] |= start[:-s] & (row[s:] == row[:-s])
    view = (
        tok.select("row", "tok")
        .with_columns(pl.Series("c", covered))
        .with_columns(pl.when(pl.col("c")).then(pl.col("tok")).otherwise(pl.lit(SLOT)).alias("w"))
        .filter(~((pl.col("w") == SLOT) & (pl.col("w").shift(1) == SLOT) & (pl.col("row").shift(1) == pl.col("row"))))
        .group_by("row", maintain_order=True)
        .agg(pl.col("w").str.join(" "))
    )
    full_view = (
        pl.DataFrame({"row": np.arange(n_rows, dtype=np.uint32)})
        .join(view, on="row", how="left", maintain_order="left")["w"]
        .fill_null("")
    )
    slot = ~covered
    slot_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row[slot].astype(np.int64), minlength=n_rows), out=slot_indptr[1:])
    return Skeletons(
        slot_indptr=slot_indptr,
        slot_tokens=(th[slot] % np.uint64(SLOT_BUCKETS)).astype(np.uint32),
        indptr=indptr,
        hashes=skel_pairs["g"].to_numpy().astype(np.uint64),
        n_shingles=n_sh,
        coverage=coverage,
        view=full_view.alias("view"),
    )


def frequent_shingles(member_hashes: NDArray[np.uint64], n_members: int, min_share: float = 0.5) -> NDArray[np.uint64]:
    """Skeleton shingles present in at least ``min_share`` of ``n_members`` rows (``member_hashes``: the
    rows' skeleton hashes concatenated, each row's unique), or, when a family mixes several scaffold variants
    so that none reaches that share, in at least ``min_share`` of as many rows as its most common shingle
    (the dominant variant's scaffold). Sorted uint64."""
    if n_members == 0 or len(member_hashes) == 0:
        return np.zeros(0, np.uint64)
    u, cnt = np.unique(member_hashes, return_counts=True)
    return u[cnt >= max(1.0, min_share * min(n_members, int(cnt.max())))]


def render_template(text: str, frequent: NDArray[np.uint64], ngram: int) -> str:
    """A prompt's normalised ``text`` with every token not covered by a ``frequent`` shingle replaced by
    ``{…}`` (one per run), i.e. the cluster's common scaffold with slots where members differ. Slots
    have no fixed length: a 10-word and a 400-word payload render the same."""
    tok = _tokens(pl.Series([text]))
    if tok.height == 0:
        return ""
    row = tok["row"].to_numpy()
    g, valid = _windows(row, tok["th"].to_numpy(), ngram)
    start = valid & np.isin(g, frequent)
    covered = start.copy()
    for s in range(1, ngram):
        covered[s:] |= start[:-s]
    out: list[str] = []
    for word, c in zip(tok["tok"].to_list(), covered, strict=True):
        if c:
            out.append(word)
        elif not out or out[-1] != SLOT:
            out.append(SLOT)
    return " ".join(out)
