"""Template skeletons: which parts of each prompt are the day's recurring boilerplate.

Word n-gram shingles of the normalised text are hashed (xxh3-64 per distinct token, combined per window
with a fixed mixer, so hashes are the same on every machine). Each shingle's document frequency over the
day is a polars group-by, with no Python loop per prompt. A prompt's *skeleton* is its set of shingles
seen in at least max(``min_df``, ``min_df_rate`` × prompts) prompts and at most ``max_df`` (a share) of
them: recurring wording is template, wording seen once is payload, and wording in nearly everything is
not a template either.

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

from ..accel import fastops
from ..accel.hashing import mix64 as _mix
from ..accel.parallel import SERIAL, Executor
from ..config import SkeletonConfig

SLOT = "{…}"
SLOT_WORD = "<slot>"  # a repeated rare word inside one prompt (see _tokens)
SLOT_BUCKETS = 1 << 20
SLOT_SAMPLE = 64  # payload words kept per row (the first ones), for payload-pool profiles
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass(frozen=True, slots=True)
class Skeletons:
    """Per-prompt skeletons in CSR form, aligned with the texts given.

    ``indptr``: int64 (n + 1,); ``hashes``: uint64 (nnz,) each row's skeleton shingles, sorted, unique;
    ``n_shingles``: int32 (n,) all distinct shingles of the row; ``coverage``: float32 (n,) share of the
    row's shingles that are skeleton; ``view``: the scaffold view text per row; ``slot_indptr`` /
    ``slot_tokens``: CSR of uint32 buckets (token hash mod 2^20) of each row's payload tokens, the words
    outside the skeleton (the first SLOT_SAMPLE per row: a payload profile, not the payload);
    ``common_cores``: sorted hashes of the
    common word cores, used to mask repeated slots (None when masking is off).
    """

    indptr: NDArray[np.int64]
    hashes: NDArray[np.uint64]
    n_shingles: NDArray[np.int32]
    coverage: NDArray[np.float32]
    view: pl.Series
    slot_indptr: NDArray[np.int64]
    slot_tokens: NDArray[np.uint32]
    common_cores: NDArray[np.uint64] | None = None  # word cores not masked as repeated slots (see _tokens)

    @property
    def sizes(self) -> NDArray[np.int32]:
        return np.diff(self.indptr).astype(np.int32)


def _split(texts: pl.Series) -> pl.DataFrame:
    """One row per token: row (u32), tok (str)."""
    return (
        pl.DataFrame({"t": texts.fill_null("")})
        .with_row_index("row")
        .select("row", pl.col("t").str.split(" ").alias("tok"))
        .explode("tok")
        .filter(pl.col("tok").is_not_null() & (pl.col("tok") != ""))
    )


def _hash_strings(values: list[str]) -> NDArray[np.uint64]:
    h = xxhash.xxh3_64_intdigest
    return np.fromiter((h(t.encode("utf-8")) for t in values), dtype=np.uint64, count=len(values))


def _cores(vocab: pl.DataFrame) -> pl.DataFrame:
    """For each distinct token: its word core (leading / trailing punctuation stripped) and the core's hash;
    ``maskable`` when the core holds a letter and at least two characters (names, entities, not numbers)."""
    parts = vocab.with_columns(pl.col("tok").str.extract_groups(r"^(\W*)(.*?)(\W*)$").alias("_g")).unnest("_g")
    parts = parts.rename({"1": "pre", "2": "core", "3": "suf"})
    return parts.with_columns(
        pl.Series("ch", _hash_strings(parts["core"].to_list()), dtype=pl.UInt64),
        ((pl.col("core").str.len_chars() >= 2) & pl.col("core").str.contains(r"[^\W\d_]")).alias("maskable"),
    )


def _repeated(row: NDArray[np.uint32], ch: NDArray[np.uint64], rare: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Tokens that are rare and whose word core occurs at least twice in their row (see :func:`_tokens`)."""
    out = np.zeros(len(row), dtype=bool)
    idx = np.flatnonzero(rare)
    if len(idx) < 2:
        return out
    r, c = row[idx], ch[idx]
    order = np.lexsort((c, r))
    r, c = r[order], c[order]
    new = np.r_[True, (r[1:] != r[:-1]) | (c[1:] != c[:-1])]
    run = np.cumsum(new) - 1
    out[idx[order]] = np.bincount(run)[run] >= 2
    return out


def _tokens(texts: pl.Series, common_cores: NDArray[np.uint64] | None = None, plain: bool = False) -> pl.DataFrame:
    """One row per token: row (u32), tok (str), th (u64 token hash); with ``plain`` also ``th_plain``, the
    token's hash before masking (so one tokenisation gives a row's plain and masked shingles).

    With ``common_cores`` (sorted hashes of the day's word cores seen in at least ``min_df`` prompts),
    *repeated slots* are masked first: a word that is rare over the day but occurs at least twice in one
    prompt (a persona name or an entity woven through a scaffold: "You are X now. X never refuses.") is
    replaced by ``SLOT_WORD`` (its punctuation kept), so the scaffold around it stays one template.
    Everything is decided per distinct token (its core, whether it is rare, its hash and its masked form's)
    and joined to the tokens once.
    """
    df = _split(texts)
    vocab = df.select(pl.col("tok").unique())
    if common_cores is None:
        vocab = vocab.with_columns(pl.Series("th", _hash_strings(vocab["tok"].to_list()), dtype=pl.UInt64))
        return df.join(vocab, on="tok", how="left", maintain_order="left")
    vocab = _cores(vocab)
    rare = vocab["maskable"].to_numpy() & ~_isin_sorted(vocab["ch"].to_numpy(), common_cores)
    masked = (vocab["pre"] + SLOT_WORD + vocab["suf"]).to_list()
    th_masked = np.zeros(len(rare), np.uint64)
    th_masked[rare] = _hash_strings([m for m, r in zip(masked, rare.tolist(), strict=True) if r])
    vocab = pl.DataFrame(
        {
            "tok": vocab["tok"],
            "ch": vocab["ch"],
            "rare": rare,
            "masked": pl.Series(masked, dtype=pl.String),
            "th": _hash_strings(vocab["tok"].to_list()),
            "th_masked": th_masked,
        }
    )
    df = df.join(vocab, on="tok", how="left", maintain_order="left")
    repeated = pl.Series("repeated", _repeated(df["row"].to_numpy(), df["ch"].to_numpy(), df["rare"].to_numpy()))
    return df.select(
        "row",
        pl.when(repeated).then(pl.col("masked")).otherwise(pl.col("tok")).alias("tok"),
        pl.when(repeated).then(pl.col("th_masked")).otherwise(pl.col("th")).alias("th"),
        *([pl.col("th").alias("th_plain")] if plain else []),
    )


def _row_cores(texts: pl.Series, start: int) -> NDArray[np.uint64]:
    """Pass 0 over one chunk: the hash of every distinct word core of each row (one entry per row and core)."""
    df = _split(texts)
    cores = _cores(df.select(pl.col("tok").unique())).select("tok", "ch")
    per_row = df.join(cores, on="tok", how="left").select("row", "ch").unique()
    return per_row["ch"].to_numpy().astype(np.uint64)


def common_word_cores(
    texts: pl.Series, min_df: int, chunks: list[tuple[int, int]], executor: Executor = SERIAL
) -> NDArray[np.uint64]:
    """Sorted hashes of the word cores (see :func:`_tokens`) found in at least ``min_df`` of ``texts``."""
    parts = executor.map_chunks(_row_cores, texts, chunks)
    if not parts:
        return np.zeros(0, np.uint64)
    cores, df_ = executor.count(np.concatenate(parts))
    return np.sort(cores[df_ >= min_df])


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


SHINGLE_BLOCK = 50_000  # rows tokenised at a time by shingle_sets


def shingle_sets(
    texts: pl.Series, ngram: int, common_cores: NDArray[np.uint64] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """All distinct shingles of each text, no document-frequency filter (for assigning single prompts).

    With ``common_cores`` (:func:`day_common_cores`) each row also gets its shingles with repeated rare words
    masked as the skeletons mask them (the union of both): a registry's or a peer's scaffold shingles were
    read off such skeletons, and the words rare in the texts given are not always the words rare in the day
    they came from (a handful of prompts makes most words rare), so the plain shingles stay too.

    Returns CSR ``(indptr int64 (n + 1,), hashes uint64)``, hashes sorted within each row.
    """
    n = len(texts)
    counts = np.zeros(n, dtype=np.int64)
    parts: list[NDArray[np.uint64]] = [np.zeros(0, np.uint64)]
    # a block of rows at a time: a token frame of the whole day (its strings) would hold gigabytes at 1M prompts
    for start in range(0, n, SHINGLE_BLOCK):
        block = texts.slice(start, SHINGLE_BLOCK)
        # one tokenisation: the plain hashes, and the masked ones where they differ (only the rows holding a
        # masked token have masked shingles of their own)
        tok = _tokens(block, common_cores, plain=common_cores is not None)
        row = tok["row"].to_numpy()
        th = tok["th"].to_numpy()
        plain = tok["th_plain"].to_numpy() if common_cores is not None else th
        del tok
        g, valid = _windows(row, plain, ngram)
        rows, hashes = [row[valid]], [g[valid]]
        differs = th != plain
        if differs.any():
            keep = np.isin(row, np.unique(row[differs]))
            masked_row = row[keep]
            g, valid = _windows(masked_row, th[keep], ngram)
            rows.append(masked_row[valid])
            hashes.append(g[valid])
        del row, th, plain, g, valid
        pairs = pl.DataFrame({"row": np.concatenate(rows), "g": np.concatenate(hashes)}).unique().sort(["row", "g"])
        counts[start : start + len(block)] = np.bincount(pairs["row"].to_numpy().astype(np.int64), minlength=len(block))
        parts.append(pairs["g"].to_numpy().astype(np.uint64))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, np.concatenate(parts)


def _row_chunks(texts: pl.Series, max_bytes: int, max_rows: int) -> list[tuple[int, int]]:
    """(start, length) row ranges of at most ``max_rows`` rows and about ``max_bytes`` of text each."""
    n = len(texts)
    if n == 0:
        return []
    csum = np.cumsum(texts.fill_null("").str.len_bytes().to_numpy().astype(np.int64))
    out: list[tuple[int, int]] = []
    start = 0
    while start < n:
        base = csum[start - 1] if start else 0
        stop = int(np.searchsorted(csum, base + max_bytes, side="right"))
        stop = min(max(stop, start + 1), start + max_rows, n)
        out.append((start, stop - start))
        start = stop
    return out


def _isin_sorted(values: NDArray[np.uint64], sorted_set: NDArray[np.uint64]) -> NDArray[np.bool_]:
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[pos] == values


_ROW_BLOCK = 50_000  # rows per block when thresholds are set (bounds the per-block lookup arrays)


def _lookup_df(g: NDArray[np.uint64], rec_hash: NDArray[np.uint64], rec_df: NDArray[np.int64]) -> NDArray[np.int64]:
    """Document frequency of each hash among the recurring ones (0 when it is not recurring)."""
    if len(rec_hash) == 0:
        return np.zeros(len(g), np.int64)
    pos = np.minimum(np.searchsorted(rec_hash, g), len(rec_hash) - 1)
    return np.where(rec_hash[pos] == g, rec_df[pos], 0)


def _row_thresholds(
    prow: NDArray[np.int64], df_of: NDArray[np.int64], thr: NDArray[np.int64], min_df: int, cfg: SkeletonConfig
) -> None:
    """Set, in ``thr``, the document frequency a shingle needs to be skeleton in each row of ``prow`` (see
    :func:`build_skeletons`). ``prow`` / ``df_of``: row and day-wide document frequency of every recurring
    row-shingle of whole rows."""
    k = cfg.scaffold_min_shingles
    if cfg.relative_df <= 0 or len(prow) == 0:
        return
    order = fastops.lexsort(-df_of, prow)  # by row, most frequent first
    r, d = prow[order], df_of[order]
    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    counts = np.diff(np.r_[starts, len(r)])
    ok = counts >= k
    ref = d[starts[ok] + k - 1]  # the k-th most frequent shingle of the row: its scaffold's frequency
    thr[r[starts[ok]]] = np.maximum(min_df, np.ceil(cfg.relative_df * ref)).astype(np.int64)


def _row_shingles(
    texts: pl.Series, start: int, common: NDArray[np.uint64] | None, ngram: int
) -> tuple[NDArray[np.uint32], NDArray[np.uint64]]:
    """Pass 1 over one chunk: each row's distinct shingle hashes as (row, hash) sorted by row, then hash."""
    tok = _tokens(texts, common)
    row = tok["row"].to_numpy()
    g, valid = _windows(row, tok["th"].to_numpy(), ngram)
    del tok
    prow, pg = row[valid].astype(np.int64) + start, g[valid]
    order = fastops.lexsort(pg, prow)
    prow, pg = prow[order], pg[order]
    first = np.ones(len(pg), dtype=bool)
    first[1:] = (prow[1:] != prow[:-1]) | (pg[1:] != pg[:-1])
    return prow[first].astype(np.uint32), pg[first]


@dataclass(frozen=True, slots=True)
class _Recurring:
    """What pass 2 needs to know of the day: the recurring shingles (sorted) with their document frequency,
    and per row the frequency a shingle needs to be skeleton and its coverage."""

    hashes: NDArray[np.uint64]
    df: NDArray[np.int64]
    thr: NDArray[np.int64]
    coverage: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class _ChunkViews:
    view: pl.Series
    slot_counts: NDArray[np.int64]
    slot_tokens: NDArray[np.uint32]


def _covered(starts: NDArray[np.bool_], row: NDArray[np.uint32], ngram: int) -> NDArray[np.bool_]:
    """Tokens inside a skeleton shingle: each token whose ``ngram``-window ``starts`` one, and the
    ``ngram - 1`` tokens after it in its row."""
    covered = starts.copy()
    for s in range(1, ngram):
        covered[s:] |= starts[:-s] & (row[s:] == row[:-s])
    return covered


def _scaffold_views(tok: pl.DataFrame, covered: NDArray[np.bool_], n: int) -> pl.Series:
    """Per row 0..n-1 of a token frame (:func:`_tokens`): its tokens with each run of tokens not ``covered``
    replaced by one ``{…}``, joined by spaces ('' for a row without tokens)."""
    view = (
        tok.select("row", "tok")
        .with_columns(pl.Series("c", covered))
        .with_columns(pl.when(pl.col("c")).then(pl.col("tok")).otherwise(pl.lit(SLOT)).alias("w"))
        .filter(  # one slot per run of payload tokens (the first token of a frame has no predecessor)
            ~(
                (pl.col("w") == SLOT) & (pl.col("w").shift(1) == SLOT) & (pl.col("row").shift(1) == pl.col("row"))
            ).fill_null(False)
        )
        .group_by("row", maintain_order=True)
        .agg(pl.col("w").str.join(" "))
    )
    return (
        pl.DataFrame({"row": np.arange(n, dtype=np.uint32)})
        .join(view, on="row", how="left", maintain_order="left")["w"]
        .fill_null("")
    )


def _chunk_views(
    texts: pl.Series, start: int, common: NDArray[np.uint64] | None, rec: _Recurring, cfg: SkeletonConfig
) -> _ChunkViews:
    """Pass 2 over one chunk: mark the tokens covered by skeleton shingles (scaffold view, payload tokens)."""
    length = len(texts)
    rec_hash, rec_df, thr = rec.hashes, rec.df, rec.thr
    tok = _tokens(texts, common)
    row = tok["row"].to_numpy()
    th = tok["th"].to_numpy()
    g, valid = _windows(row, th, cfg.ngram)
    # a token is template when any skeleton window covers it
    df_g = _lookup_df(g, rec_hash, rec_df)
    begins = valid & (df_g > 0) & (df_g >= thr[row + start])
    covered = _covered(begins, row, cfg.ngram)
    # payload words, the first SLOT_SAMPLE of each row: enough for a payload-pool profile, and a day of long
    # documents does not keep every word of them
    slot = ~covered
    seen = np.cumsum(slot)  # payload tokens so far in the chunk
    row_first = np.r_[True, row[1:] != row[:-1]] if len(row) else np.zeros(0, bool)
    first_idx = np.maximum.accumulate(np.where(row_first, np.arange(len(row)), 0))
    slot &= seen - np.where(first_idx > 0, seen[np.maximum(first_idx - 1, 0)], 0) <= SLOT_SAMPLE
    return _ChunkViews(
        view=_scaffold_views(tok, covered, length),
        slot_counts=np.bincount(row[slot].astype(np.int64), minlength=length),
        slot_tokens=(th[slot] % np.uint64(SLOT_BUCKETS)).astype(np.uint32),
    )


def _recurring(
    prow: NDArray[np.uint32],
    pg: NDArray[np.uint64],
    n_rows: int,
    min_df: int,
    max_df: int,
    cfg: SkeletonConfig,
    executor: Executor,
) -> tuple[_Recurring, NDArray[np.int64], NDArray[np.uint64], NDArray[np.int32]]:
    """The day-wide document frequencies of the row-shingles (``prow``, ``pg``: sorted by row, then hash) and
    what follows from them: (:class:`_Recurring`, skeleton indptr, skeleton hashes, shingles per row)."""
    n_sh = np.bincount(prow, minlength=n_rows).astype(np.int32)
    uniq, df = executor.count(pg)
    recurring = (df >= min_df) & (df <= max_df)
    rec_hash, rec_df = uniq[recurring], df[recurring]  # sorted by hash
    del uniq, df, recurring
    # per-row thresholds and skeletons, in blocks of whole rows so the lookups never span the whole day
    thr = np.full(n_rows, min_df, np.int64)
    keep_parts: list[NDArray[np.uint64]] = []
    skel_counts = np.zeros(n_rows, np.int64)
    bounds = np.searchsorted(prow, np.arange(0, n_rows + _ROW_BLOCK, _ROW_BLOCK).clip(0, n_rows))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        r_b, g_b = prow[lo:hi].astype(np.int64), pg[lo:hi]
        df_b = _lookup_df(g_b, rec_hash, rec_df)
        rec = df_b > 0
        _row_thresholds(r_b[rec], df_b[rec], thr, min_df, cfg)
        in_skel = rec & (df_b >= thr[r_b])
        keep_parts.append(g_b[in_skel])
        skel_counts += np.bincount(r_b[in_skel], minlength=n_rows)
    hashes = np.concatenate(keep_parts) if keep_parts else np.zeros(0, np.uint64)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(skel_counts, out=indptr[1:])
    coverage = (np.diff(indptr) / np.maximum(n_sh, 1)).astype(np.float32)
    return _Recurring(rec_hash, rec_df, thr, coverage), indptr, hashes, n_sh


def _csr(counts: list[NDArray[np.int64]], n_rows: int) -> NDArray[np.int64]:
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=indptr[1:])
    return indptr


def _df_bounds(texts: pl.Series, cfg: SkeletonConfig) -> tuple[int, int]:
    """The least and most prompts a shingle of the day's skeletons is in. What counts as recurring grows
    with the day: payloads and popular prompts re-sent a few dozen times in a million-prompt day are not a
    template."""
    n_docs = max(int((texts.fill_null("").str.len_bytes() > 0).sum()), 1)
    min_df = max(cfg.min_df, int(np.ceil(cfg.min_df_rate * n_docs)))
    return min_df, max(int(cfg.max_df * n_docs), min_df)


def day_common_cores(texts: pl.Series, cfg: SkeletonConfig, executor: Executor = SERIAL) -> NDArray[np.uint64] | None:
    """The word cores of a day's (normalised) ``texts`` that :func:`build_skeletons` never masks as repeated
    slots (None when ``mask_repeated_slots`` is off): for shingling single prompts (:func:`shingle_sets`)
    the way the day's skeletons were, so that a scaffold with a persona name woven through it matches
    the registry's or a peer's scaffold shingles whatever the name."""
    if not cfg.mask_repeated_slots:
        return None
    return common_word_cores(texts, _df_bounds(texts, cfg)[0], _row_chunks(texts, 16 << 20, 100_000), executor)


def build_skeletons(
    texts: pl.Series,
    cfg: SkeletonConfig,
    chunk_bytes: int = 16 << 20,
    chunk_rows: int = 100_000,
    executor: Executor = SERIAL,
) -> Skeletons:
    """Skeleton of every text (already normalised; '' rows get empty skeletons).

    A shingle is in a row's skeleton when its document frequency over the day is at least
    max(``min_df``, ``min_df_rate`` × prompts) and at most ``max_df`` of the prompts, and — the relative
    rule — at least ``relative_df`` times that of the row's ``scaffold_min_shingles``-th most frequent
    shingle. The relative rule is what keeps skeletons size-invariant: a payload text that recurs (a public
    problem set re-used by several templates and by ordinary users) is frequent in absolute terms on a big
    day, but a scaffold sent thousands of times is far more frequent than any one payload in it, and both
    grow with the day in proportion. Rows with fewer recurring shingles than ``scaffold_min_shingles`` (a
    short popular text, a generic opening) keep the absolute rule only.

    Streaming passes over row chunks (about ``chunk_bytes`` of text each), so the per-token frames never
    exist for the whole day: pass 0 (``mask_repeated_slots``) counts word cores for repeated-slot masking
    (:func:`_tokens`); pass 1 keeps each row's distinct shingle hashes (12 bytes per row-shingle) for the
    day-wide document frequencies; pass 2 re-tokenises a chunk at a time to mark the tokens covered by
    skeleton shingles (scaffold view, payload tokens).
    """
    n_rows = len(texts)
    chunks = _row_chunks(texts, chunk_bytes, chunk_rows)
    min_df, max_df = _df_bounds(texts, cfg)
    common = common_word_cores(texts, min_df, chunks, executor) if cfg.mask_repeated_slots else None
    parts = executor.map_chunks(_row_shingles, texts, chunks, common, cfg.ngram)
    prow = np.concatenate([np.zeros(0, np.uint32), *(p[0] for p in parts)])  # sorted by row, then hash
    pg = np.concatenate([np.zeros(0, np.uint64), *(p[1] for p in parts)])
    del parts
    rec, indptr, hashes, n_sh = _recurring(prow, pg, n_rows, min_df, max_df, cfg, executor)
    del prow, pg
    out = executor.map_chunks(_chunk_views, texts, chunks, common, rec, cfg)
    full_view = pl.concat([c.view for c in out]) if out else pl.Series("w", [], dtype=pl.String)
    return Skeletons(
        slot_indptr=_csr([c.slot_counts for c in out], n_rows),
        slot_tokens=np.concatenate([np.zeros(0, np.uint32), *(c.slot_tokens for c in out)]),
        indptr=indptr,
        hashes=hashes,
        n_shingles=n_sh,
        coverage=rec.coverage,
        view=full_view.alias("view"),
        common_cores=common,
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


def render_template(
    text: str, frequent: NDArray[np.uint64], ngram: int, common_cores: NDArray[np.uint64] | None = None
) -> str:
    """A prompt's normalised ``text`` with every token not covered by a ``frequent`` shingle replaced by
    ``{…}`` (one per run), i.e. the cluster's common scaffold with slots where members differ. Slots
    have no fixed length: a 10-word and a 400-word payload render the same."""
    return render_templates(pl.Series([text], dtype=pl.String), [frequent], ngram, common_cores)[0]


def render_templates(
    texts: pl.Series,
    frequent: list[NDArray[np.uint64]],
    ngram: int,
    common_cores: NDArray[np.uint64] | None = None,
) -> list[str]:
    """:func:`render_template` of many prompts at once: ``texts[i]`` rendered with its own ``frequent[i]``
    (one tokenisation of them all: a run renders one template per cluster, tens of thousands at 1M
    prompts, and a polars frame per prompt cost more than the rest of the template stage)."""
    n = len(texts)
    if n != len(frequent):
        raise ValueError(f"render_templates: {n} texts and {len(frequent)} shingle sets")
    tok = _tokens(texts, common_cores)
    if tok.height == 0:
        return [""] * n
    row = tok["row"].to_numpy()
    g, valid = _windows(row, tok["th"].to_numpy(), ngram)
    # a window starts template when its shingle is among its own row's frequent ones
    sizes = np.fromiter((len(f) for f in frequent), dtype=np.int64, count=n)
    freq = pl.DataFrame(
        {
            "row": np.repeat(np.arange(n, dtype=np.uint32), sizes),
            "g": np.concatenate([np.zeros(0, np.uint64), *(np.asarray(f, np.uint64) for f in frequent)]),
        }
    ).unique()
    hit = (
        pl.DataFrame({"row": row, "g": g})
        .join(freq.with_columns(pl.lit(True).alias("hit")), on=["row", "g"], how="left", maintain_order="left")["hit"]
        .fill_null(False)
        .to_numpy()
    )
    start = valid & hit
    covered = _covered(start, row, ngram)
    return _scaffold_views(tok, covered, n).to_list()
