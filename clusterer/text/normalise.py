"""Normalise prompt text so that surface noise does not split a template.

NFKC, case-fold, masking of volatile tokens (URLs, e-mails, UUIDs / nonces, numbers) and whitespace
collapse, all as polars string expressions (Rust regex, no Python loop per prompt). Exact duplicates
of the normalised text share one 64-bit key, so they are embedded once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import xxhash
from numpy.typing import NDArray

from ..config import NormaliseConfig

URL = r"(?:https?://|ftp://|www\.)[^\s<>\"']+"
EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
UUID = r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
# long tokens mixing letters and digits (request IDs, nonces, hashes); plain words and numbers untouched
NONCE = r"\b(?:[a-z_]+\d|\d+[a-z_])[a-z0-9_]{6,}\b"
NUMBER = r"\d+(?:[.,]\d+)*"
# scripts written without spaces between words (CJK ideographs, kana, CJK punctuation, Thai, Lao, Khmer,
# Myanmar): each character is made a token of its own, so word n-gram shingles become character n-grams
# there and templates in those scripts get skeletons (as CJK analysers in search engines do)
NO_SPACE_CHARS = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"


@dataclass(frozen=True, slots=True)
class Normalised:
    """Normalised text per prompt, aligned with the prompt frame.

    ``text``: str per row ('' where the input was null or blank); ``key``: uint64 (n,) xxh3 of ``text``;
    ``empty``: bool (n,) nothing to cluster; ``truncated``: bool (n,) input longer than ``max_chars``.
    """

    text: pl.Series
    key: NDArray[np.uint64]
    empty: NDArray[np.bool_]
    truncated: NDArray[np.bool_]


def normalise_expr(col: str, cfg: NormaliseConfig) -> pl.Expr:
    """The normalisation as one polars expression over a string column."""
    e = pl.col(col).fill_null("").str.slice(0, cfg.max_chars).str.normalize("NFKC").str.to_lowercase()
    if cfg.mask_urls:
        e = e.str.replace_all(URL, " <url> ")
    if cfg.mask_emails:
        e = e.str.replace_all(EMAIL, " <email> ")
    if cfg.mask_ids:
        e = e.str.replace_all(UUID, " <id> ").str.replace_all(NONCE, " <id> ")
    if cfg.mask_numbers:
        e = e.str.replace_all(NUMBER, "<num>")
    e = e.str.replace_all(f"([{NO_SPACE_CHARS}&&\\P{{M}}]\\p{{M}}*)", " $1 ")  # a character and its marks
    return e.str.replace_all(r"\s+", " ").str.strip_chars()


def text_keys(texts: pl.Series) -> NDArray[np.uint64]:
    """Stable 64-bit xxh3 key of each string (the same across runs, machines and polars versions)."""
    h = xxhash.xxh3_64_intdigest
    return np.fromiter((h(t.encode("utf-8")) for t in texts.to_list()), dtype=np.uint64, count=len(texts))


def normalise_frame(texts: pl.Series, cfg: NormaliseConfig) -> pl.DataFrame:
    """Columns ``norm`` (the normalised text) and ``truncated`` of a string Series (nulls allowed), row by
    row: any batch of rows normalises alike, so an engine can split the day into batches."""
    frame = pl.DataFrame({"t": texts.cast(pl.String)})
    return frame.select(
        normalise_expr("t", cfg).alias("norm"),
        (pl.col("t").str.len_chars().fill_null(0) > cfg.max_chars).alias("truncated"),
    )


def normalised(out: pl.DataFrame) -> Normalised:
    """:class:`Normalised` from :func:`normalise_frame`'s columns (of the whole day, in row order)."""
    norm = out["norm"]
    empty = (norm.str.len_bytes() == 0).to_numpy()
    return Normalised(text=norm, key=text_keys(norm), empty=empty, truncated=out["truncated"].to_numpy())


def normalise(texts: pl.Series, cfg: NormaliseConfig) -> Normalised:
    """Normalise a string Series (nulls allowed)."""
    return normalised(normalise_frame(texts, cfg))


def unspace(texts: pl.Series) -> pl.Series:
    """Undo :func:`normalise_expr`'s one-token-per-character spacing of scripts written without spaces (for
    the encoder, which reads them as written); a no-op on text without such characters."""
    pair = f"([{NO_SPACE_CHARS}]\\p{{M}}*) ([{NO_SPACE_CHARS}])"
    return texts.str.replace_all(pair, "$1$2").str.replace_all(pair, "$1$2")  # two passes: overlapping pairs
