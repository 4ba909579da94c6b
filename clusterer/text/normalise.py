"""Normalise prompt text so that surface noise does not split a template.

NFKC, removal of invisible characters and stray combining marks, Latin look-alike letters read as Latin,
case-fold, masking of volatile tokens (URLs, e-mails, UUIDs / nonces, numbers) and whitespace collapse,
all as polars string expressions (Rust regex and Aho-Corasick, no Python loop per prompt). Exact
duplicates of the normalised text share one 64-bit key, so they are embedded once.

Character-level evasion (an operator varying each prompt's bytes so that no two copies of its scaffold
share word n-grams or tokens): zero-width spaces and joiners, soft hyphens, word joiners, BOMs and
variation selectors inside words (Unicode's default-ignorable code points) are dropped; combining marks
stacked on Latin letters, spaces or punctuation are dropped (after NFKC a Latin letter with an accent is
one code point, so only added marks remain); and letters of other scripts that look like Latin ones
(Unicode's confusables, as the ``confusable_homoglyphs`` package ships them: Cyrillic 'а' 'е' 'о' 'р',
Greek 'ο' 'ν', Armenian, Cherokee, Lisu, ...) are read as those Latin letters in a prompt where some word
mixes Latin with such a script. A prompt written in one of those scripts alone is left as written (its
language ID and its own templates unchanged); a word spelt entirely in look-alikes of another script
inside an English prompt is folded only when another word of the prompt mixes scripts.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

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


# scripts with letters drawn like Latin ones (Unicode's confusables): a word spelling Latin with some of
# them is a look-alike spelling
LOOKALIKE_SCRIPTS = ("Cyrillic", "Greek", "Armenian", "Cherokee", "Lisu", "Coptic", "Canadian_Aboriginal")
# Latin letters of living orthographies that the table draws like ASCII ones: left as written (Turkish
# and Azeri dotless i, Ewe / Akan / Kabiye letters, the click letter of Khoisan orthographies)
ORTHOGRAPHY_LETTERS = frozenset("ıʋɣɩƖǀ")
INVISIBLE = r"\p{Default_Ignorable_Code_Point}"
# combining marks after a letter of Latin or of those scripts, or after a non-letter: after NFKC the
# accents of those alphabets are mostly part of a precomposed letter, so these are added ones ("zalgo", a
# stress mark) or, rarely, a second accent with no precomposed form (a Yoruba tone on 'ṣ'), whose loss only
# makes two spellings of a word one; marks after letters of other scripts (Devanagari vowel signs, Arabic
# vowels, Thai tones) stay
_MARKED = "[" + "".join(rf"\p{{{sc}}}" for sc in ("Latin", *LOOKALIKE_SCRIPTS)) + r"[^\p{L}\p{M}]]"
STRAY_MARKS = rf"({_MARKED})[\p{{Mn}}\p{{Me}}]+"


@dataclass(frozen=True, slots=True)
class Lookalikes:
    """Look-alike letters (:func:`lookalikes`): ``sources`` → ``latin`` (one ASCII letter each) for letters
    of :data:`LOOKALIKE_SCRIPTS`, and ``latin_sources`` → ``latin_targets`` for non-ASCII Latin and
    common-script letters NFKC leaves (IPA letters, small capitals)."""

    sources: list[str]
    latin: list[str]
    latin_sources: list[str]
    latin_targets: list[str]

    @property
    def any_source(self) -> str:
        """Regex class of :attr:`sources`."""
        return "[" + "".join(self.sources) + "]"

    @property
    def foreign(self) -> str:
        """Regex class of the letters neither Latin nor in :attr:`sources` (a word holding one is not a
        look-alike spelling of a Latin word)."""
        return rf"[\p{{L}}--\p{{Latin}}--{self.any_source}]"


@functools.cache
def lookalikes() -> Lookalikes:
    """Look-alike letters from Unicode's confusables (the ``confusable_homoglyphs`` package's table): each
    non-ASCII letter whose confusable is one ASCII letter. The table draws some capitals (Cyrillic 'І',
    Greek 'Ι') like a lower-case 'l': a capital reads as 'I'."""
    import confusable_homoglyphs
    from confusable_homoglyphs import categories

    table = json.loads((Path(confusable_homoglyphs.__file__).parent / "confusables.json").read_text("utf-8"))
    scripts = {sc.upper() for sc in LOOKALIKE_SCRIPTS}
    other: tuple[list[str], list[str]] = ([], [])
    latin: tuple[list[str], list[str]] = ([], [])
    for char, glyphs in table.items():
        if len(char) != 1 or char.isascii() or not unicodedata.category(char).startswith("L"):
            continue  # letters only: '×', '∪', '∨' stay the operators they are
        if char in ORTHOGRAPHY_LETTERS:
            continue
        to = next((g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalpha()), None)
        if to is None:
            continue
        if to == "l" and char.isupper():
            to = "I"
        alias = categories.alias(char)
        side = other if alias in scripts else latin if alias in ("LATIN", "COMMON") else None
        if side is not None:
            side[0].append(char)
            side[1].append(to)
    return Lookalikes(other[0], other[1], latin[0], latin[1])


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


def fold_evasion(texts: pl.Series, cfg: NormaliseConfig) -> pl.Series:
    """Invisible characters and stray marks dropped, look-alike letters folded (as ``cfg`` asks), over NFKC
    text, before :func:`normalise_expr`. Text that is all ASCII has none of them: :func:`normalise_frame`
    runs this on the other rows only.

    Look-alikes of another script are read as Latin word by word (whitespace-separated; the whitespace
    collapses to one space, as :func:`normalise_expr` would): a word holding one of them and no letter of
    another script that is not a look-alike, which also holds a Latin letter ("rеsult" with a Cyrillic
    'е') or stands next to a word of Latin letters only ("а" for "a" in "write а function"). A word of
    Russian or Greek proper holds a letter that is no look-alike and stays as written, whatever else the
    prompt holds; a one-letter Russian word ("с", "о") is read as Latin only beside a Latin word."""
    out = texts.to_frame("t")
    if cfg.strip_invisible:
        out = out.select(pl.col("t").str.replace_all(INVISIBLE, "").str.replace_all(STRAY_MARKS, "$1"))
    if not cfg.fold_lookalikes:
        return out["t"]
    la = lookalikes()
    out = out.select(pl.col("t").str.replace_many(la.latin_sources, la.latin_targets))
    rows = out["t"].str.contains(la.any_source).arg_true()
    if not len(rows):
        return out["t"]
    w = pl.element()
    latin_only = w.str.contains(r"\p{Latin}") & ~w.str.contains(r"[\p{L}--\p{Latin}]")
    beside_latin = latin_only.shift(1).fill_null(False) | latin_only.shift(-1).fill_null(False)
    lookalike = w.str.contains(la.any_source) & ~w.str.contains(la.foreign)
    fold = lookalike & (w.str.contains(r"\p{Latin}") | beside_latin)
    folded = out[rows].select(
        pl.col("t")
        .str.replace_all(r"\s+", " ")
        .str.split(" ")
        .list.eval(pl.when(fold).then(w.str.replace_many(la.sources, la.latin)).otherwise(w))
        .list.join(" ")
    )["t"]
    return out["t"].scatter(rows, folded)


def normalise_expr(col: str, cfg: NormaliseConfig) -> pl.Expr:
    """Case-fold, masks and whitespace collapse over an NFKC string column (after :func:`fold_evasion` where
    that applies)."""
    e = pl.col(col).str.to_lowercase()
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
    step = 1 << 16  # a slice's Python strings at a time, not the whole column's
    each = (h(t.encode("utf-8")) for i in range(0, len(texts), step) for t in texts.slice(i, step).to_list())
    return np.fromiter(each, dtype=np.uint64, count=len(texts))


def _in_chunks(texts: pl.Series) -> pl.Series:
    """``texts`` (one chunk) cut into a chunk per polars thread: polars runs a string expression over a
    column's chunks in parallel."""
    step = -(-len(texts) // pl.thread_pool_size())
    if len(texts) < 8192 or step >= len(texts):
        return texts
    return pl.concat([texts.slice(i, step) for i in range(0, len(texts), step)], rechunk=False)


def normalise_frame(texts: pl.Series, cfg: NormaliseConfig) -> pl.DataFrame:
    """Columns ``norm`` (the normalised text) and ``truncated`` of a string Series (nulls allowed), row by
    row: any batch of rows normalises alike, so an engine can split the day into batches."""
    frame = pl.DataFrame({"t": texts.cast(pl.String)})
    nfkc = frame.select(pl.col("t").fill_null("").str.slice(0, cfg.max_chars).str.normalize("NFKC"))["t"]
    if cfg.strip_invisible or cfg.fold_lookalikes:
        # only text with a non-ASCII character has anything to fold: those rows folded and put back
        rows = nfkc.str.contains(r"[^\x00-\x7f]").arg_true()
        if len(rows):
            wide = fold_evasion(_in_chunks(nfkc.gather(rows).rechunk()), cfg)
            nfkc = _in_chunks(nfkc.scatter(rows, wide).rechunk())
    # each column computed on its own: a select mixing columns of other chunkings works on one chunk
    return pl.DataFrame(
        {
            "norm": nfkc.to_frame("t").select(normalise_expr("t", cfg))["t"],
            "truncated": frame.select(pl.col("t").str.len_chars().fill_null(0) > cfg.max_chars)["t"],
        }
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
