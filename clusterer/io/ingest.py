"""Ingest: one day of raw prompt logs (Parquet, JSONL or CSV) -> a validated prompt frame.

Accepts one file, several files, a glob or a directory of part files. Files are scanned lazily with polars
and only the needed columns are collected. Every problem a user can fix is raised as :class:`InputError`
naming the file, the column and example rows.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import functools
import glob as globlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import polars as pl
import xxhash
from numpy.typing import NDArray

from ..config import IngestConfig
from ..errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}
# Columns of the prompt frame, in order; `_row` is the 0-based position over all input files.
CORE = ["_row", "prompt_id", "account_id", "timestamp", "text"]
# A frame read without its texts (``read_logs(..., texts=False)``: a stream holds the day so far this way) has,
# in place of ``text``, each row's xxh3-64 key of it (null for a null text) and where the row lies in the
# input: its file's index in ``Prompts.files`` and its row there; :func:`fetch_texts` reads texts back.
TEXT_KEY = "_text_xxh3"
TEXT_AT = ("_file", "_file_row")
_MESSAGES_AS_TEXT = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class InputFile:
    path: str
    format: str
    bytes: int
    xxh3_64: str  # fingerprint of the file's bytes (of the content for an in-memory table)
    rows: int


@dataclass(frozen=True, slots=True)
class Prompts:
    """Validated prompts, in input order.

    ``frame`` columns: ``_row`` (u32), ``prompt_id`` (str), ``account_id`` (str), ``timestamp``
    (datetime[us, UTC], may be null), ``text`` (str, may be null), then the input's extra columns. Read
    without texts (``texts`` False), ``text`` is replaced by ``TEXT_KEY`` and ``TEXT_AT`` (:func:`fetch_texts`).
    """

    frame: pl.DataFrame
    files: tuple[InputFile, ...]
    extra_columns: tuple[str, ...]
    generated_prompt_ids: bool
    texts: bool = True


def discover(paths: Sequence[str | Path], fmt: str = "auto") -> list[tuple[Path, str]]:
    """Expand files, globs and directories into a sorted list of ``(path, format)``.

    Raises:
        InputError: a path that does not exist, a directory or glob with no readable files, or a file
        whose format cannot be told from its extension.
    """
    if not paths:
        raise InputError("no input given: pass one or more files, a glob or a directory")
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in SUFFIXES and not f.name.startswith((".", "_"))
            )
            if not files:
                raise InputError(f"{p}: directory has no .parquet, .jsonl, .ndjson, .json or .csv files")
            # hidden and "_" files (_SUCCESS, .crc) are a writer's markers; any other file left out is said
            other = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() not in SUFFIXES and not f.name.startswith((".", "_"))
            )
            if other:
                log.warning(
                    "%s: %d file(s) left out, not .parquet / .pq / .jsonl / .ndjson / .json / .csv (e.g. %s); "
                    "compressed logs are not read: decompress them first",
                    p,
                    len(other),
                    ", ".join(str(f.relative_to(p)) for f in other[:3]),
                )
            found.extend(files)
        elif p.is_file():
            found.append(p)
        elif any(ch in str(raw) for ch in "*?["):
            files = sorted(Path(f) for f in globlib.glob(str(raw), recursive=True) if Path(f).is_file())
            if not files:
                raise InputError(f"{raw}: glob matches no files")
            found.extend(files)
        else:
            raise InputError(f"{raw}: no such file or directory")
    out: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for f in found:
        if f.resolve() in seen:
            continue
        seen.add(f.resolve())
        kind = fmt if fmt != "auto" else SUFFIXES.get(f.suffix.lower())
        if kind is None:
            raise InputError(
                f"{f}: cannot tell the format from the extension {f.suffix!r}; pass --format parquet|jsonl|csv"
            )
        out.append((f, kind))
    return out


def _fingerprint(path: Path) -> str:
    h = xxhash.xxh3_64()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_bad_utf8(path: Path) -> tuple[int, int] | None:
    """(line number, byte offset) of the first invalid UTF-8 sequence, or None; a file scanned before in the
    same version (:func:`_version`) is not scanned again (a stream reads a part's texts back in every window)."""
    return _bad_utf8_at(*_version(path))


def _version(path: Path) -> tuple[str, int, int, int, int, int]:
    """What tells one version of a file from another: its resolved path, size, modification and change times
    (ns: a copy that keeps the modification time still changes the change time) and its device and inode."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino


@functools.lru_cache(maxsize=4096)
def _bad_utf8_at(path: str, *version: int) -> tuple[int, int] | None:
    """:func:`_first_bad_utf8` of the file at ``path`` as it is now (``version``: :func:`_version`'s numbers,
    the cache key). Streams the file."""
    dec = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            try:
                dec.decode(chunk)
            except UnicodeDecodeError as err:
                head = chunk[: max(err.start, 0)]
                return line + head.count(b"\n"), offset + max(err.start, 0)
            line += chunk.count(b"\n")
            offset += len(chunk)
    try:
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return line, offset
    return None


# columns a run or `fingerprints match` writes beside the carried input columns (io.outputs.ASSIGNMENT_SCHEMA)
_WRITTEN = frozenset(
    "run_id day prompt_id account_id timestamp cluster_id status membership template_coverage truncated "
    "campaign_id campaign_score flagged peer_provider peer_campaign text".split()
)


def carried_name(col: str, names: Sequence[str], keep: Sequence[str] = ()) -> str:
    """The name an input column is carried under into ``assignments.parquet``: its own, or ``input_<name>``
    when the outputs write a column of that name (a log's own ``cluster_id`` or ``status``) or it starts
    with "_" (the reader's own working columns do) — so no input column is dropped or overwritten. A
    configured metadata column (``keep``) keeps its name: the run reads it by that name."""
    if col in keep or (col not in _WRITTEN and not col.startswith("_")):
        return col
    new = f"input_{col}"
    while new in names or new in _WRITTEN:
        new = f"input_{new}"
    return new


_BLANK_MAX = 1 << 20  # a JSONL / CSV file this small is read whole to tell whether it holds only blank lines


def _id_columns(cfg: IngestConfig) -> list[str]:
    """The configured columns that hold identifiers (read as text from CSV, never as numbers)."""
    # (not the IP column: an integer IPv4 is read as a number for its /24, see client_network)
    cols = (cfg.prompt_id_col, cfg.account_col, cfg.org_col, cfg.payment_col)
    return [c for c in cols if c]


def _scan_one(path: Path, kind: str, cfg: IngestConfig) -> pl.LazyFrame | None:
    """Lazy frame for one file, or None for a file without rows (zero bytes, or a text file of blank lines)."""
    size = path.stat().st_size
    if size == 0 or (kind != "parquet" and size <= _BLANK_MAX and not path.read_bytes().strip()):
        return None
    try:
        if kind == "parquet":
            return pl.scan_parquet(path)
        with path.open("rb") as fh:
            if fh.read(4) == b"PAR1":  # read as text, its bytes would be named invalid UTF-8
                raise InputError(f"{path}: is a parquet file, read as {kind}; drop --format or pass --format parquet")
        bad = _first_bad_utf8(path)
        if bad is not None and cfg.on_bad_utf8 == "error":
            line, off = bad
            raise InputError(
                f"{path}: invalid UTF-8 bytes at line {line} (byte offset {off}); re-encode the "
                "file as UTF-8 or pass --on-bad-utf8 replace to read them as U+FFFD"
            )
        if kind == "csv":
            enc = "utf8-lossy" if bad else "utf8"
            # identifiers are text: type inference would read "0012" as 12 (merging accounts "012" and "12")
            # and "1e3" as a float, and the IDs would no longer join back to the source
            names = pl.scan_csv(path, encoding=enc, n_rows=0, infer_schema=False).collect_schema().names()
            ids = {c: pl.String for c in (*_id_columns(cfg), cfg.text_col) if c in names}
            return pl.scan_csv(path, encoding=enc, infer_schema_length=10000, schema_overrides=ids or None)
        # chat logs: read message content as text whatever its shape (a string or a list of parts, in any
        # mix); _messages_text takes the text parts out of the JSON of a list
        source: Path | io.BytesIO = path
        if bad is not None:  # JSONL with bad bytes: decode with replacement, then parse from memory
            source = io.BytesIO(path.read_bytes().decode("utf-8", errors="replace").encode("utf-8"))
        inferred = pl.scan_ndjson(source, infer_schema_length=10000).collect_schema()
        overrides = None
        for col in (cfg.text_col, cfg.messages_col):
            if col in inferred.names() and _is_chat(inferred[col]):
                overrides = {col: _MESSAGES_AS_TEXT}
                break
        if isinstance(source, io.BytesIO):
            source.seek(0)
            return pl.read_ndjson(source, infer_schema_length=10000, schema_overrides=overrides).lazy()
        return pl.scan_ndjson(source, infer_schema_length=10000, schema_overrides=overrides)
    except InputError:
        raise
    except (pl.exceptions.PolarsError, OSError) as err:
        raise InputError(f"{path}: cannot be read as {kind}: {_first_line(err)}") from err


CHAT_ROLES = ("system", "developer", "user")  # turns kept from chat logs; assistant / tool turns are not the prompt
_TEXT_PART_TYPES = ("text", "input_text")  # content parts that carry text (OpenAI chat / responses formats)


def _parts_text(value: str | None) -> str | None:
    """Text of a content value that is the JSON of a list of parts (``[{"type": "text", "text": ...}]``)."""
    if value is None or not value.lstrip().startswith("[{"):
        return value
    try:
        parts = json.loads(value)
    except ValueError:
        return value
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        return value
    texts = [
        p["text"]
        for p in parts
        if isinstance(p.get("text"), str) and (p.get("type") is None or p.get("type") in _TEXT_PART_TYPES)
    ]
    return "\n".join(texts)


def _content_expr(dtype: pl.DataType) -> pl.Expr | None:
    """Expression turning a message's ``content`` (string, list of strings or list of parts) into text."""
    c = pl.col("__content")
    if dtype in (pl.String, pl.Null):
        return c.cast(pl.String)
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        if inner == pl.String:
            return c.list.join("\n")
        if isinstance(inner, pl.Struct) and "text" in {f.name for f in inner.fields}:
            el = pl.element()
            keep = el.struct.field("text").cast(pl.String)
            if "type" in {f.name for f in inner.fields}:
                kind = el.struct.field("type").cast(pl.String)
                keep = pl.when(kind.is_null() | kind.is_in(list(_TEXT_PART_TYPES))).then(keep).otherwise(None)
            return c.list.eval(keep).list.drop_nulls().list.join("\n")
    return None


def _messages_text(msgs: pl.Series, where: str, col: str) -> pl.Series:
    """Chat format: system / developer and user turns, in order, joined by newlines (null when none).

    ``content`` may be a string, a list of strings, or a list of parts of which the text parts are taken
    (also when the parts arrive as JSON text, as JSONL readers give a column that mixes both forms).

    Raises:
        InputError: the column is not a list of structs with ``role`` and ``content``.
    """
    dtype = msgs.dtype
    fields = (
        {f.name: f.dtype for f in dtype.inner.fields}
        if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)
        else {}
    )
    if "role" not in fields or "content" not in fields:
        rows = ""
        if dtype == pl.String:  # a JSONL column mixing message lists and plain strings is read as text
            odd = msgs.is_not_null() & ~msgs.str.strip_chars_start().str.starts_with("[")
            at = odd.arg_true().head(_EXAMPLES).to_list()
            rows = "; not a list in " + ", ".join(f"row {r}: {msgs[r][:60]!r}" for r in at) if at else ""
        raise InputError(f"{where}: column '{col}' must be a list of {{role, content}} messages (got {dtype}{rows})")
    content = _content_expr(fields["content"])
    if content is None:
        raise InputError(
            f"{where}: column '{col}': message content has type {fields['content']}; expected a string or a "
            "list of {type, text} parts"
        )
    ex = (
        pl.DataFrame({"__m": msgs})
        .with_row_index("__r")
        .explode("__m")
        .select(
            "__r",
            pl.col("__m").struct.field("role").cast(pl.String).str.to_lowercase().alias("__role"),
            pl.col("__m").struct.field("content").alias("__content"),
        )
        .filter(pl.col("__role").is_in(list(CHAT_ROLES)))
        .with_columns(content.alias("__content"))
    )
    if ex["__content"].str.starts_with("[{").any():
        ex = ex.with_columns(pl.col("__content").map_elements(_parts_text, return_dtype=pl.String, skip_nulls=True))
    joined = ex.drop_nulls("__content").group_by("__r", maintain_order=True).agg(pl.col("__content").str.join("\n"))
    out = pl.DataFrame({"__r": pl.int_range(0, len(msgs), dtype=pl.UInt32, eager=True)}).join(
        joined, on="__r", how="left", maintain_order="left"
    )
    return out["__content"].alias("__text")


_TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Binary, pl.Null)


def _separator_hint(names: list[str], kind: str) -> str:
    """A hint for a CSV whose one column name holds another separator (a ``;``- or tab-separated export)."""
    if kind != "csv" or len(names) != 1:
        return ""
    sep = next((c for c in (";", "\t", "|") if c in names[0]), None)
    shown = "tab" if sep == "\t" else repr(sep)
    return "" if sep is None else f" (the header reads as one column holding {shown}: CSV is read comma-separated)"


def _check_text_type(lf: pl.LazyFrame, dtype: pl.DataType, where: str, cfg: IngestConfig) -> None:
    """Refuse a text column that holds structures, numbers or booleans instead of strings (it would be
    stringified silently: a ``--text-col`` naming a length or flag column clusters every row as one text).
    A CSV's text column is read as text, so a prompt that is a number stays a prompt."""
    if isinstance(dtype, _TEXT_TYPES) or dtype in _TEXT_TYPES:
        return
    try:
        sample = lf.select(pl.col(cfg.text_col)).head(_EXAMPLES).collect()[cfg.text_col].to_list()
    except pl.exceptions.PolarsError:
        sample = []
    shown = "; ".join(f"row {i}: {str(v)[:80]!r}" for i, v in enumerate(sample))
    raise InputError(
        f"{where}: column '{cfg.text_col}' holds {dtype} values, not text (e.g. {shown or 'no rows'}); pass "
        "--text-col NAME for the column that holds the prompt text (chat logs: a list of {role, content} "
        "messages is read as such)"
    )


def _csv_problem(where: str, kind: str) -> str:
    """For a CSV file polars could not parse: where it first breaks its header's shape (the parser's message
    names no line), as "; line N ..." — a record with another number of fields, or a quote never closed —
    or "" when the standard library's reader finds nothing wrong (or ``where`` is no CSV file)."""
    import csv

    path = Path(where)
    if kind != "csv" or not path.is_file():
        return ""
    start = 1
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None:
                return ""
            start = reader.line_num + 1
            for rec in reader:
                if len(rec) != len(header):
                    return f"; line {start} has {len(rec)} fields, the header {len(header)}"
                start = reader.line_num + 1
    except csv.Error as err:
        return f"; the record from line {start} on cannot be parsed ({err}: a quote opened there never closes?)"
    return ""


def _is_chat(dtype: pl.DataType) -> bool:
    inner = dtype.inner if isinstance(dtype, pl.List) else None
    return isinstance(inner, pl.Struct) and {"role", "content"} <= {f.name for f in inner.fields}


def _select(lf: pl.LazyFrame, where: str, kind: str, cfg: IngestConfig, only_text: bool = False) -> pl.DataFrame:
    """Collect the columns a run needs from one source as ``__text``, ``__account``, ``__ts``, ``__pid``
    (when present) and the extra columns; ``only_text``: ``__text`` alone (texts read back,
    :func:`fetch_texts`).

    Raises:
        InputError: missing columns, a text column of structures, malformed chat messages, invalid UTF-8.
    """
    try:
        schema = lf.collect_schema()
    except pl.exceptions.PolarsError as err:
        raise InputError(f"{where}: cannot be read as {kind}: {_first_line(err)}{_csv_problem(where, kind)}") from err
    names = list(schema.names())
    has_text = cfg.text_col in names
    if not has_text and cfg.messages_col not in names:
        raise InputError(
            f"{where}: missing column '{cfg.text_col}' (nor a chat '{cfg.messages_col}' column); "
            f"columns present: {', '.join(names) or '(none)'}; pass --text-col NAME{_separator_hint(names, kind)}"
        )
    for col, flag in ((cfg.account_col, "--account-col"), (cfg.timestamp_col, "--timestamp-col")):
        if col not in names:
            raise InputError(f"{where}: missing column '{col}'; columns present: {', '.join(names)}; pass {flag} NAME")
    chat_col = None if has_text else cfg.messages_col
    if has_text and _is_chat(schema[cfg.text_col]):
        chat_col = cfg.text_col  # the text column holds chat messages: read them as such
    if chat_col is not None:
        text = pl.col(chat_col)
    else:
        _check_text_type(lf, schema[cfg.text_col], where, cfg)
        text = pl.col(cfg.text_col)
        if schema[cfg.text_col] not in (pl.String, pl.Binary):  # bytes are decoded after collecting (below)
            text = text.cast(pl.String, strict=False)
    drop = {cfg.text_col, cfg.messages_col, cfg.account_col, cfg.timestamp_col, cfg.prompt_id_col}
    extras = [c for c in names if c not in drop]
    sel = [text.alias("__text"), pl.col(cfg.account_col).alias("__account"), pl.col(cfg.timestamp_col).alias("__ts")]
    if cfg.prompt_id_col in names and not cfg.new_prompt_ids:
        sel.append(pl.col(cfg.prompt_id_col).cast(pl.String).alias("__pid"))
    meta = (cfg.org_col, cfg.account_created_col, cfg.ip_col, cfg.asn_col, cfg.proxy_col, cfg.user_agent_col)
    sel += [pl.col(c).alias(carried_name(c, names, (*meta, cfg.payment_col))) for c in extras]
    # a log with both: a row whose text is null or blank is read from its chat messages
    fallback = chat_col is None and cfg.messages_col in names and _is_chat(schema[cfg.messages_col])
    if only_text:
        sel = sel[:1]
    if fallback:
        sel.append(pl.col(cfg.messages_col).alias("__msgs"))
    try:
        df = lf.select(sel).collect()
    except pl.exceptions.PolarsError as err:
        raise InputError(f"{where}: cannot be read as {kind}: {_first_line(err)}{_csv_problem(where, kind)}") from err
    if chat_col is not None:
        df = df.with_columns(_messages_text(df["__text"], where, chat_col))
    elif schema[cfg.text_col] == pl.Binary:
        df = df.with_columns(_decode_bytes(df["__text"], where, cfg))
    if fallback:
        blank = (df["__text"].is_null() | (df["__text"].str.strip_chars() == "")).arg_true()
        if len(blank):  # only those rows' messages are read: the column is the text column's fallback
            try:
                chat = _messages_text(df["__msgs"].gather(blank), where, cfg.messages_col)
            except InputError as err:  # messages it cannot read leave those rows empty, as they came
                if not only_text:  # said when the file is read, not again each time its texts are read back
                    log.warning("%s; rows with null or blank text stay empty_text", err)
            else:
                df = df.with_columns(df["__text"].scatter(blank, chat.fill_null(df["__text"].gather(blank))))
        df = df.drop("__msgs")
    return df


def _decode_bytes(raw: pl.Series, where: str, cfg: IngestConfig) -> pl.Series:
    """A binary text column as UTF-8 text (U+FFFD for bad bytes with ``on_bad_utf8 = "replace"``).

    Raises:
        InputError: invalid UTF-8 in some rows (named) when ``on_bad_utf8`` is "error".
    """
    errors = "replace" if cfg.on_bad_utf8 == "replace" else "strict"

    def decode(b: bytes | None) -> str | None:
        try:
            return None if b is None else b.decode("utf-8", errors=errors)
        except UnicodeDecodeError:
            return None

    text = pl.Series("__text", [decode(b) for b in raw.to_list()], dtype=pl.String)
    bad = text.is_null() & raw.is_not_null()
    if bad.any():
        rows = bad.arg_true().head(_EXAMPLES).to_list()
        raise InputError(
            f"{where}: column '{cfg.text_col}' holds invalid UTF-8 bytes in {int(bad.sum())} rows (e.g. rows "
            f"{', '.join(map(str, rows))}); re-encode them as UTF-8 or pass --on-bad-utf8 replace"
        )
    return text


def _first_line(err: Exception) -> str:
    """A library error's first line (polars appends multi-line context stacks)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


_INT64_MIN = -(2**63)
# the times a prompt log can hold: anything outside is an epoch in a wrong unit or a corrupt value
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)
_FORMAT_PASSES = 4  # timestamp string formats inferred in turn before the rest are reported unparseable


def _rows_example(df: pl.DataFrame, mask: pl.Series, files: list[str]) -> str:
    bad = df.filter(mask).head(_EXAMPLES)
    parts = [f"{files[f]} row {r}" for f, r in zip(bad["_file"].to_list(), bad["_file_row"].to_list(), strict=True)]
    return ", ".join(parts)


def _utc(s: pl.Series) -> pl.Series:
    """A datetime Series as datetime[us, UTC] (naive values are taken as UTC)."""
    out = s.dt.cast_time_unit("us")
    zone = s.dtype.time_zone if isinstance(s.dtype, pl.Datetime) else None
    return out.dt.replace_time_zone("UTC") if zone is None else out.dt.convert_time_zone("UTC")


def _type_clash(frames: list[pl.DataFrame], sources: list[str], cfg: IngestConfig) -> str:
    """Which column has which type in which file, for the columns whose types differ across ``frames``."""
    names = {
        "__text": cfg.text_col,
        "__account": cfg.account_col,
        "__ts": cfg.timestamp_col,
        "__pid": cfg.prompt_id_col,
    }
    parts = []
    for col in dict.fromkeys(c for f in frames for c in f.columns):
        seen = {}
        for f in frames:
            if col in f.columns:
                seen.setdefault(str(f.schema[col]), sources[int(f["_file"][0])] if f.height else "a part with no rows")
        if len(seen) > 1:
            shown = ", ".join(f"{t} in {src}" for t, src in seen.items())
            parts.append(f"column '{names.get(col, col)}' is {shown}")
    return "; ".join(parts) or "the column types differ"


def _shown(value: Any) -> str:
    """A raw timestamp value as an error shows it: a time or date in ISO form (its repr is Python's
    constructor call), a string quoted, anything else as written."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def _raise_bad_rows(
    df: pl.DataFrame, bad: pl.Series, name: str, files: list[str], what: str, expected: str
) -> NoReturn:
    """InputError naming how many rows of the raw timestamp column are ``what``, with examples (file, row,
    value)."""
    ex = df.filter(bad).head(_EXAMPLES)
    shown = "; ".join(
        f"{files[f]} row {r}: {_shown(v)}" for f, r, v in zip(ex["_file"], ex["_file_row"], ex["__ts"], strict=True)
    )
    raise InputError(f"column '{name}' has {int(bad.sum())} {what} (e.g. {shown}); expected {expected}")


def _far_timestamps(df: pl.DataFrame, ts: pl.Series, cfg: IngestConfig, files: list[str]) -> pl.Series:
    """``ts`` with the times no prompt log holds (before ``EARLIEST`` or from ``LATEST`` on: an epoch in a
    wrong unit, a corrupt value) refused, naming them; with ``--null-timestamps skip`` they are null, kept
    unclustered as a null timestamp is. One such row would otherwise date a stream window decades away and
    make every later row of the day late."""
    far = ts.is_not_null() & ((ts < EARLIEST) | (ts >= LATEST))
    if not far.any():
        return ts
    if cfg.null_timestamps == "error":
        n_far = int(far.sum())
        ex = df.with_columns(ts.alias("__parsed")).filter(far).head(_EXAMPLES)
        shown = "; ".join(
            f"{files[f]} row {r}: {_shown(v)} read as {p:%Y-%m-%d %H:%M:%S}"
            for f, r, v, p in zip(ex["_file"], ex["_file_row"], ex["__ts"], ex["__parsed"], strict=True)
        )
        raise InputError(
            f"column '{cfg.timestamp_col}' has {n_far} time{'s' if n_far != 1 else ''} before {EARLIEST:%Y} or from "
            f"{LATEST:%Y} on "
            f"(e.g. {shown}): a wrong epoch unit or a corrupt value, not a prompt's time; fix or drop them, or "
            "pass --null-timestamps skip to keep them unclustered (status 'no_timestamp')"
        )
    return pl.select(pl.when(far).then(None).otherwise(ts).alias("timestamp")).to_series()


def _parse_timestamps(df: pl.DataFrame, name: str, files: list[str]) -> pl.Series:
    """Parse the raw timestamp column ``__ts`` (reported to users as ``name``) to datetime[us, UTC]."""
    col = "__ts"
    s = df[col]
    dt = s.dtype
    if dt == pl.Null:
        return pl.Series("timestamp", [None] * len(s), dtype=pl.Datetime("us", "UTC"))
    if isinstance(dt, pl.Datetime):
        return _utc(s).alias("timestamp")
    if dt == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp")
    if dt.is_integer() or dt.is_float():
        # an epoch beyond the datetime range (±inf, a float past 9.2e21, an unsigned integer past the int64
        # maximum) is not a time: the rows are shown, not a cast error (NaN is null first: polars orders NaN
        # above every number)
        far = None
        if dt.is_float():
            v = s.cast(pl.Float64).fill_nan(None)
            far = v.is_infinite() | (v.abs() >= 9.2e21)
        elif dt == pl.UInt64:
            far = s >= 2**63
        if far is not None and far.any():
            _raise_bad_rows(
                df, far.fill_null(False), name, files, "timestamps out of range", "epoch seconds, ms, us or ns"
            )
        # epoch numbers: each value's magnitude tells seconds, milliseconds, microseconds or nanoseconds (for
        # any instant since 1973; a log that mixes units keeps every row's real time); NaN, and the int64
        # minimum (pandas' NaT written as a number), are null
        if not dt.is_float():
            n = s.cast(pl.Int64)
            v = pl.select(pl.when(n == _INT64_MIN).then(None).otherwise(n)).to_series()
        a = v.abs()
        if dt.is_float():
            scale = pl.when(a < 1e11).then(1e6).when(a < 1e14).then(1e3).when(a < 1e17).then(1.0).otherwise(1e-3)
            us = (pl.lit(v) * scale).round(0).cast(pl.Int64)
        else:  # integers stay integers: nanoseconds since 1970 are beyond a float's exact range
            us = (
                pl.when(a < 10**11)
                .then(pl.lit(v) * 1_000_000)
                .when(a < 10**14)
                .then(pl.lit(v) * 1_000)
                .when(a < 10**17)
                .then(pl.lit(v))
                .otherwise(pl.lit(v) // 1_000)
            )
        return pl.select(us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp")).to_series()
    if dt == pl.String:
        return _parse_strings(df, s, name, files)
    # any other type (a time of day without its date, a duration, a list, ...): the files and rows shown
    _raise_bad_rows(
        df,
        pl.Series([True] * len(s)),
        name,
        files,
        f"values of type {dt}",
        "a datetime, an ISO 8601 string or epoch number",
    )


def _parse_strings(df: pl.DataFrame, s: pl.Series, name: str, files: list[str]) -> pl.Series:
    """Timestamps written as text: epoch numbers ("1793577890", "1793577890123.5": a JSON log quoting them,
    read as the numbers they are, per row) and ISO 8601 strings (:func:`_parse_iso`), mixed as they come.
    Text is an epoch only with ten digits or more (2001 onwards in seconds, any later unit): "20261102", a
    basic-format ISO date, would otherwise be read as seconds in 1970; it is refused as not year-first ISO."""
    text = s.str.strip_chars()
    whole = text.str.contains(r"^\d{10,}$").fill_null(False)
    decimal = text.str.contains(r"^\d{10,}\.\d*$").fill_null(False)
    if not (whole.any() or decimal.any()):
        return _parse_iso(df, s, name, files)
    ints = pl.select(pl.when(whole).then(text).otherwise(None).cast(pl.Int64, strict=False)).to_series()
    if (whole & ints.is_null()).any():
        _raise_bad_rows(
            df, whole & ints.is_null(), name, files, "timestamps out of range", "epoch seconds, ms, us or ns"
        )
    floats = pl.select(pl.when(decimal).then(text).otherwise(None).cast(pl.Float64, strict=False)).to_series()
    parsed = _parse_timestamps(df.with_columns(ints.alias("__ts")), name, files)
    parsed = parsed.fill_null(_parse_timestamps(df.with_columns(floats.alias("__ts")), name, files))
    rest = pl.select(pl.when(whole | decimal).then(None).otherwise(s)).to_series()
    if rest.is_not_null().any():
        parsed = parsed.fill_null(_parse_iso(df, rest, name, files))
    return parsed.alias("timestamp")


def _parse_iso(df: pl.DataFrame, s: pl.Series, name: str, files: list[str]) -> pl.Series:
    """Parse ISO 8601 strings (of mixed shapes) to datetime[us, UTC]; see :func:`_parse_timestamps`."""
    text = s.str.strip_chars()
    # only year-first dates: polars reads the format off the first value, so "11/02/2026" (US) and
    # "03/11/2026" would be taken day-first without a word
    other = s.is_not_null() & (text != "") & ~text.str.contains(r"^[+-]?\d{4}-\d{2}-\d{2}")
    if other.any():
        _raise_bad_rows(
            df,
            other,
            name,
            files,
            "timestamps not in ISO 8601 (year first)",
            "ISO 8601 (2026-11-26T13:05:00Z), a datetime column or epoch seconds; a day-first or month-first "
            "date is ambiguous (11/02/2026), convert it first",
        )
    parsed = text.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    for _ in range(_FORMAT_PASSES):  # a log mixing ISO shapes (offsets and none, 'T' or ' '): the format of
        rest = parsed.is_null() & text.is_not_null() & (text != "")  # a pass is read off its first value
        if not rest.any():
            break
        again = text.filter(rest).str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
        if again.null_count() == len(again):
            break
        parsed = parsed.scatter(rest.arg_true(), again)
    if parsed.null_count() > s.null_count():
        # mixed offsets or plain dates: second try with a tolerant per-value format
        alt = text.str.to_datetime(format="%Y-%m-%d", time_unit="us", time_zone="UTC", strict=False)
        parsed = parsed.fill_null(alt)
    bad = parsed.is_null() & s.is_not_null() & (text != "")
    if bad.any():
        _raise_bad_rows(
            df,
            bad,
            name,
            files,
            "unparseable timestamps",
            "ISO 8601 (2026-11-26T13:05:00Z), a datetime column or epoch seconds",
        )
    return parsed.alias("timestamp")


def read_logs(
    paths: Sequence[str | Path],
    cfg: IngestConfig,
    map_files: Callable[[Callable[..., Any], list[Any]], list[Any]] | None = None,
    whole_lines: bool = False,
    texts: bool = True,
    cache: dict[Any, Any] | None = None,
) -> Prompts:
    """Read and validate one day of logs from files; ``map_files(read_file, items)`` reads them (an engine's
    workers; in this process when None).

    ``paths`` are files, globs or directories. ``cfg.fill_account`` replaces null / empty accounts (None
    makes them an error); ``cfg.new_prompt_ids`` numbers rows instead of reading the prompt_id column;
    ``cfg.null_timestamps`` says whether null timestamps are an error or rows left unclustered. A CSV file
    whose last line has no line break may be a part file still being written, cut inside its last field (it
    would read as a shorter row): with ``whole_lines`` (a watch reading a live day) it is an error, so it is
    read again later; otherwise a warning. Without ``texts`` each file's texts are dropped once read, each row
    keeping their key and place (``Prompts`` above): the day held in memory is its rows' metadata, and
    :func:`fetch_texts` reads the texts of the rows a step needs back from the files. ``cache`` (a dict the
    caller keeps between reads of a growing day: ``clusterer watch``) holds each file's rows as read, by its
    version (:func:`_version`) and read options: a file unchanged since the last read is not read again.

    Raises:
        InputError: missing column, duplicate prompt IDs, null accounts, null or unparseable timestamps,
        a text column that is not text, invalid UTF-8, unreadable files, an empty selection of files, or
        (``whole_lines``) a CSV file whose last line has no line break.
    """
    files = discover(paths, cfg.format)
    for path, kind in files:
        if kind == "csv" and _ends_mid_line(path):
            what = (
                f"{path}: its last line has no line break: a part file still being written reads with its "
                "last row cut short"
            )
            if whole_lines:
                raise InputError(
                    f"{what}; write part files atomically (named with a leading '.' or '_' while written, "
                    "then renamed), or end the file with a line break"
                )
            log.warning("%s; if the file was complete, end it with a line break to silence this", what)
    items = [(fi, path, kind, cfg, texts) for fi, (path, kind) in enumerate(files)]
    known = cache if cache is not None else {}
    stamps = [_stamp(path, kind, cfg, texts) if cache is not None else None for path, kind in files]
    todo = [item for item, stamp in zip(items, stamps, strict=True) if stamp not in known]
    got = map_files(read_file, todo) if map_files is not None else [read_file(*item) for item in todo]
    fresh = {item[0]: r for item, r in zip(todo, got, strict=True)}
    read = [fresh[fi] if fi in fresh else _renumbered(known[stamp], fi) for fi, stamp in enumerate(stamps)]
    if cache is not None:  # the files read now, and only those: a file gone or changed leaves it
        cache.clear()
        cache.update(zip(stamps, read, strict=True))
    frames = [df for df, _ in read if df is not None]
    return _validate(frames, [info for _, info in read], [str(p) for p, _ in files], cfg, texts)


def _stamp(path: Path, kind: str, cfg: IngestConfig, texts: bool) -> tuple[Any, ...]:
    """What says a file is the one read before: its version (:func:`_version`) and how it was read."""
    return (*_version(path), kind, cfg, texts)


def _renumbered(read: tuple[pl.DataFrame | None, InputFile], fi: int) -> tuple[pl.DataFrame | None, InputFile]:
    """A file's rows read before, as the ``fi``-th file now (a part file that sorts before it shifts it)."""
    df, info = read
    return (df.with_columns(pl.lit(fi, pl.UInt32).alias("_file")) if df is not None else None), info


def read_file(
    fi: int, path: Path, kind: str, cfg: IngestConfig, texts: bool = True
) -> tuple[pl.DataFrame | None, InputFile]:
    """One input file's selected columns (with ``_file`` = ``fi`` and ``_file_row``; without ``texts``, the
    texts' keys in place of the texts) and its description; None for an empty file.

    Raises:
        InputError: as :func:`read_logs`, for this file.
    """
    try:
        lf = _scan_one(path, kind, cfg)
        if lf is None:
            return None, InputFile(str(path.absolute()), kind, 0, _fingerprint(path), 0)
        df = _select(lf, str(path), kind, cfg)
    except InputError as err:
        line = _bad_json_line(path) if kind == "jsonl" and "cannot be read" in str(err) else None
        if line is None:
            raise
        raise InputError(f"{err}; the first line that is not one JSON object: {line}") from err
    df = df.with_columns(
        pl.lit(fi, pl.UInt32).alias("_file"), pl.int_range(0, pl.len(), dtype=pl.UInt32).alias("_file_row")
    )
    if not texts:
        df = df.with_columns(text_key(df["__text"]).alias(TEXT_KEY)).drop("__text")
    return df, InputFile(str(path.absolute()), kind, path.stat().st_size, _fingerprint(path), df.height)


def _ends_mid_line(path: Path) -> bool:
    """Whether a text file holds bytes and its last one is not a line break."""
    with open(path, "rb") as fh:
        if fh.seek(0, io.SEEK_END) == 0:
            return False
        fh.seek(-1, io.SEEK_END)
        return fh.read(1) not in (b"\n", b"\r")


def _bad_json_line(path: Path) -> str | None:
    """``line N: 'its start'`` of a JSONL file's first non-blank line that is not a JSON object (None: none)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                ok = isinstance(json.loads(line), dict)
            except ValueError:
                ok = False
            if not ok:
                return f"line {n}: {line.strip()[:80]!r}"
    return None


def read_frame(table: Any, cfg: IngestConfig) -> Prompts:
    """Read and validate one day of logs held in memory: a polars DataFrame / LazyFrame, a pandas DataFrame
    or a pyarrow Table, with the same columns a log file has.

    Raises:
        TypeError: ``table`` is none of those.
        InputError: as :func:`read_logs`.
    """
    kind, lf = _as_lazy(table)
    where = f"<{kind}>"
    df = _select(lf, where, kind, cfg).with_columns(
        pl.lit(0, pl.UInt32).alias("_file"), pl.int_range(0, pl.len(), dtype=pl.UInt32).alias("_file_row")
    )
    info = InputFile(where, kind, int(df.estimated_size()), "", df.height)
    prompts = _validate([df], [info], [where], cfg)
    # an in-memory table has no file bytes: its fingerprint is that of its content
    info = dataclasses.replace(info, xxh3_64=content_digest(prompts.frame))
    return dataclasses.replace(prompts, files=(info,))


def _as_lazy(table: Any) -> tuple[str, pl.LazyFrame]:
    if isinstance(table, pl.DataFrame):
        return "polars.DataFrame", table.lazy()
    if isinstance(table, pl.LazyFrame):
        return "polars.LazyFrame", table
    mod = type(table).__module__.split(".")[0]
    try:
        if mod == "pandas" and type(table).__name__ == "DataFrame":
            return "pandas.DataFrame", pl.from_pandas(table).lazy()
        if mod == "pyarrow" and type(table).__name__ in ("Table", "RecordBatch"):
            return f"pyarrow.{type(table).__name__}", pl.DataFrame(pl.from_arrow(table)).lazy()
    except (pl.exceptions.PolarsError, TypeError, ValueError, ArithmeticError) as err:
        raise InputError(f"<{mod} table>: cannot be converted to a polars frame: {_first_line(err)}") from err
    raise TypeError(
        "logs must be a polars DataFrame / LazyFrame, a pandas DataFrame, a pyarrow Table, or log file paths "
        f"(got {type(table).__module__}.{type(table).__name__})"
    )


def _concat(frames: list[pl.DataFrame], sources: list[str], cfg: IngestConfig, texts: bool = True) -> pl.DataFrame:
    """The sources' frames as one (an empty frame of the selected columns when there are none)."""
    if frames:
        # datetimes of any zone (or none) are one type once in UTC: parts written in other zones concatenate
        frames = [
            f.with_columns(_utc(f["__ts"])) if isinstance(f.schema.get("__ts"), pl.Datetime) else f for f in frames
        ]
        try:
            return pl.concat(frames, how="diagonal_relaxed")
        except pl.exceptions.PolarsError as err:
            raise InputError(
                f"input files have incompatible column types: {_type_clash(frames, sources, cfg)} ({_first_line(err)})"
            ) from err
    return pl.DataFrame(
        schema={
            **({"__text": pl.String} if texts else {TEXT_KEY: pl.UInt64}),
            "__account": pl.String,
            "__ts": pl.Datetime("us", "UTC"),
            "_file": pl.UInt32,
            "_file_row": pl.UInt32,
        }
    )


def _validate(
    frames: list[pl.DataFrame], infos: list[InputFile], sources: list[str], cfg: IngestConfig, texts: bool = True
) -> Prompts:
    """The shared checks of :func:`read_logs` and :func:`read_frame` over the collected sources."""
    df = _concat(frames, sources, cfg, texts)
    df = df.with_columns(pl.int_range(0, pl.len(), dtype=pl.UInt32).alias("_row"))

    # accounts
    acc = df["__account"].cast(pl.String)
    missing = acc.is_null() | (acc.str.strip_chars() == "")
    if missing.any():
        if cfg.fill_account is None:
            raise InputError(
                f"column '{cfg.account_col}' is null or empty in {int(missing.sum())} rows "
                f"(e.g. {_rows_example(df, missing, sources)}); drop them or pass --fill-account"
            )
        acc = pl.select(pl.when(missing).then(pl.lit(cfg.fill_account)).otherwise(acc)).to_series()
    ts = _far_timestamps(df, _parse_timestamps(df, cfg.timestamp_col, sources), cfg, sources)
    null_ts = ts.is_null()
    if len(ts) and null_ts.all():
        raise InputError(
            f"column '{cfg.timestamp_col}' is null or empty in every row ({len(ts)}, e.g. "
            f"{_rows_example(df, null_ts, sources)}): the day cannot be dated, windowed or clustered without them"
        )
    if null_ts.any() and cfg.null_timestamps == "error":
        raise InputError(
            f"column '{cfg.timestamp_col}' is null or empty in {int(null_ts.sum())} rows "
            f"(e.g. {_rows_example(df, null_ts, sources)}); fill or drop them, or pass --null-timestamps skip "
            "to keep them unclustered (status 'no_timestamp')"
        )

    # prompt ids
    generated = "__pid" not in df.columns
    if generated:
        pid = pl.select(pl.format("p{}", pl.int_range(0, df.height).cast(pl.String).str.zfill(9))).to_series()
    else:
        pid = df["__pid"]
        null = pid.is_null()
        if null.any():
            raise InputError(
                f"column '{cfg.prompt_id_col}' is null in {int(null.sum())} rows "
                f"(e.g. {_rows_example(df, null, sources)}); fill them or pass --new-prompt-ids"
            )
        dup = pid.is_duplicated()
        if dup.any():
            vals = pid.filter(dup).unique(maintain_order=True).head(_EXAMPLES).to_list()
            raise InputError(
                f"column '{cfg.prompt_id_col}' has {int(dup.sum())} rows sharing "
                f"{pid.filter(dup).n_unique()} duplicated IDs (e.g. {', '.join(map(repr, vals))}; {vals[0]!r} at "
                f"{_rows_example(df, pid == vals[0], sources)}); IDs must be unique to join on; "
                "de-duplicate the logs or pass --new-prompt-ids"
            )
    extras = [c for c in df.columns if not c.startswith("_")]
    text = {"text": df["__text"].alias("text")} if texts else {c: df[c] for c in (TEXT_KEY, *TEXT_AT)}
    frame = pl.DataFrame(
        {
            "_row": df["_row"],
            "prompt_id": pid.alias("prompt_id"),
            "account_id": acc.alias("account_id"),
            "timestamp": ts.alias("timestamp"),
            **text,
        }
    ).hstack(df.select(extras))
    return Prompts(
        frame=frame, files=tuple(infos), extra_columns=tuple(extras), generated_prompt_ids=generated, texts=texts
    )


def text_key(texts: pl.Series) -> pl.Series:
    """Each text's stable xxh3-64 key (null for a null text): what a frame read without texts keeps of them."""
    from ..text.normalise import text_keys

    keys = pl.DataFrame({"t": texts, "k": pl.Series(text_keys(texts.fill_null("")), dtype=pl.UInt64)})
    return keys.select(pl.when(pl.col("t").is_null()).then(None).otherwise(pl.col("k")).alias(TEXT_KEY)).to_series()


class LogsChanged(InputError):
    """An input file no longer holds, at a row read before, the text it held then (rewritten or replaced)."""


def _read_back(path: Path, kind: str, at: pl.Series, cfg: IngestConfig) -> pl.Series:
    """The texts at rows ``at`` (sorted, distinct) of one file, read as the first read read them (its text
    column alone, only those rows collected).

    Raises:
        InputError: the file no longer reads, or has no rows.
    """
    lf = _scan_one(path, kind, cfg)
    if lf is None:
        raise InputError(f"{path}: it has no rows now")
    sel = lf.with_row_index("__file_row").filter(pl.col("__file_row").is_in(at.implode())).drop("__file_row")
    return _select(sel, str(path), kind, cfg, only_text=True)["__text"]


def fetch_texts(prompts: Prompts, rows: pl.DataFrame, cfg: IngestConfig) -> pl.Series:
    """The texts of ``rows`` (rows of ``prompts.frame`` read without texts: ``TEXT_AT`` and ``TEXT_KEY``), in
    their order, read back from their files — each file once, its text column alone and only those rows
    collected (polars still decodes the file's whole text column: the peak is one file's texts) — and checked
    against the keys read before.

    Raises:
        LogsChanged: a file that no longer holds those texts at those rows (or no longer reads).
    """
    want = rows.select(*TEXT_AT, TEXT_KEY).unique(TEXT_AT).sort(*TEXT_AT)
    got: list[pl.DataFrame] = []
    for (fi,), part in want.group_by("_file", maintain_order=True):
        info = prompts.files[int(fi)]
        path = Path(info.path)
        fix = (
            "the file changed while the day was clustered: input files must stay as they are once read (write "
            "part files atomically, and new ones beside them)"
        )
        try:
            text = _read_back(path, info.format, part["_file_row"], cfg)
        except (InputError, OSError) as err:
            raise LogsChanged(
                f"{path}: the texts of {part.height:,} of its rows read before cannot be read back ({err}); {fix}"
            ) from err
        same = text_key(text).eq_missing(part[TEXT_KEY]) if text.len() == part.height else None
        if same is None or not same.all():
            bad = part.height - text.len() if same is None else int((~same).sum())
            eg = part["_file_row"][0 if same is None else int(same.arg_min() or 0)]
            raise LogsChanged(
                f"{path}: {bad:,} of the {part.height:,} rows read back hold other texts now or are gone (e.g. its "
                f"row {eg + 1:,}); {fix}"
            )
        got.append(part.select(*TEXT_AT).with_columns(text.alias("text")))
    if not got:
        return pl.Series("text", [], pl.String)
    return rows.select(*TEXT_AT).join(pl.concat(got), on=list(TEXT_AT), how="left", maintain_order="left")["text"]


def rows_of(frame: pl.DataFrame, ids: pl.Series) -> pl.DataFrame | None:
    """The rows of ``frame`` (a prompt frame read back from a run's inputs) whose ``prompt_id`` are ``ids``, in
    that order — all of them (a batch run) or a part (a ``clusterer stream`` window reads the whole log);
    None when one of ``ids`` is not there."""
    if frame.height == len(ids) and frame["prompt_id"].eq_missing(ids).all() and not ids.has_nulls():
        return frame
    got = pl.DataFrame({"prompt_id": ids.cast(pl.String)}).join(
        frame.with_row_index("__at"), on="prompt_id", how="left", maintain_order="left"
    )
    return None if got["__at"].null_count() else got.drop("__at")


def id_order(prompts: Prompts) -> NDArray[np.int64] | None:
    """The rows of ``prompts`` in prompt-ID order (IDs are unique: checked above), None when they are in it
    already or the IDs were numbered from the row order (no order but that one)."""
    if prompts.generated_prompt_ids or prompts.frame.height < 2:
        return None
    order = prompts.frame["prompt_id"].arg_sort().to_numpy().astype(np.int64)
    return None if bool((np.diff(order) > 0).all()) else order


def content_digest(frame: pl.DataFrame) -> str:
    """xxh3-64 hex digest of a prompt frame's content (column names, types, values and nulls, in row
    order), the same whether the rows came from a file or an in-memory table. ``_``-columns are skipped."""
    h = xxhash.xxh3_64()
    for name in frame.columns:
        if name.startswith("_"):
            continue
        s = frame[name]
        if isinstance(s.dtype, (pl.Categorical, pl.Enum)):
            s = s.cast(pl.String)
        h.update(f"{name}\x00{s.dtype}\x00".encode())
        h.update(np.packbits(s.is_null().to_numpy()).tobytes())
        if s.dtype == pl.String:
            h.update(s.str.len_bytes().fill_null(0).to_numpy().astype(np.int64).tobytes())
            arr = s.fill_null("").to_arrow(compat_level=pl.CompatLevel.oldest())
            arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
            offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
            if len(offsets):
                h.update(memoryview(arr.buffers()[2])[int(offsets[0]) : int(offsets[-1])])
        elif s.dtype.is_numeric() or s.dtype.is_temporal() or s.dtype == pl.Boolean:
            h.update(s.to_physical().fill_null(0).to_numpy().tobytes())
        else:  # nested extras: their printed values (rare; slow but canonical)
            h.update(repr(s.to_list()).encode())
    return h.hexdigest()


def optional_datetime(s: pl.Series) -> pl.Series | None:
    """An optional metadata column as UTC microsecond datetimes (strings parsed leniently, unparseable ones
    null), or None when it holds no dates at all."""
    if s.dtype == pl.String:
        s = s.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    if not isinstance(s.dtype, pl.Datetime):
        return None
    s = s.dt.cast_time_unit("us")
    return s.dt.replace_time_zone("UTC") if s.dtype.time_zone is None else s.dt.convert_time_zone("UTC")


def sender_metadata(
    frame: pl.DataFrame, cfg: IngestConfig, fill_orgs: bool = True
) -> tuple[pl.Series | None, pl.Series | None]:
    """The optional sender columns of a prompt frame: (organisation, account creation time).

    The organisation (``cfg.org_col``, as strings) is None when the column is absent; with ``fill_orgs`` a null
    among non-null values becomes one organisation per account (an account with no organisation is its own; a
    null used to wrap to 2^32 - 1 as a code). A column null throughout stays so: the signal is missing. The
    creation time (``cfg.account_created_col``, UTC) is None when absent, not dates, or null throughout.
    """
    orgs = None
    if cfg.org_col in frame.columns:
        orgs = frame[cfg.org_col].cast(pl.String, strict=False)
        if fill_orgs and 0 < orgs.null_count() < len(orgs):
            orgs = pl.select(pl.coalesce(orgs, pl.lit("\x00account:") + frame["account_id"])).to_series()
        orgs = orgs.alias(cfg.org_col)
    created = None
    if cfg.account_created_col in frame.columns:
        created = optional_datetime(frame[cfg.account_created_col])
        if created is not None and created.null_count() == len(created):
            created = None
    return orgs, created


NETWORK_SIGNALS = ("client_ip", "asn", "proxy", "user_agent", "payment_fingerprint")
_NO = ("", "0", "false", "no", "none", "null", "n/a", "-")


@dataclass(frozen=True, slots=True)
class Network:
    """The optional network and payment columns of a prompt frame, one value per input row (null = unknown).

    ``net``: the client network: the /24 of an IPv4 address (the /48 of an IPv6 one; a value already written
    as a prefix is kept), or the ASN when the log has no IP column; ``ip``: the client address as given (text);
    ``asn``: the ASN as text; ``proxy``: bool,
    the row came from a proxy or hosting network; ``user_agent``; ``payment``: the payment fingerprint;
    ``present``: which of :data:`NETWORK_SIGNALS` the log carries (a column null throughout is missing).
    """

    net: pl.Series | None
    ip: pl.Series | None
    asn: pl.Series | None
    proxy: pl.Series | None
    user_agent: pl.Series | None
    payment: pl.Series | None
    present: tuple[str, ...]

    @property
    def missing(self) -> list[str]:
        return [s for s in NETWORK_SIGNALS if s not in self.present]


def _network_column(frame: pl.DataFrame, col: str) -> pl.Series | None:
    """A network column as given, or None when absent or null throughout.

    Raises:
        InputError: the column holds nested values (lists, structs) instead of scalars.
    """
    if not col or col not in frame.columns:
        return None
    s = frame[col]
    if s.dtype.is_nested():
        rows = np.flatnonzero(s.is_not_null().to_numpy())[:_EXAMPLES].tolist()
        raise InputError(
            f"column '{col}' holds {s.dtype} values, expected scalars (e.g. rows {rows}); pass the column that holds "
            "the value itself, or set its ingest.*_col to '' to leave the signal out"
        )
    return None if s.null_count() == len(s) else s


def client_network(ip: pl.Series) -> pl.Series:
    """The network of each client address: '/24' prefix of IPv4 ('a.b.c'), first three groups of IPv6, an
    integer read as IPv4; other values (already prefixes, names) are kept as they are."""
    if ip.dtype.is_integer():
        return (ip.cast(pl.Int64) // 256).cast(pl.String).alias("net")
    s = ip.cast(pl.String).str.strip_chars()
    v4 = s.str.extract(r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$", 1)
    v6 = s.str.extract(r"^([0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}):", 1).str.to_lowercase()
    return pl.select(pl.coalesce(v4, v6, s)).to_series().alias("net")


def network_metadata(frame: pl.DataFrame, cfg: IngestConfig) -> Network:
    """The optional network and payment columns (``cfg.ip_col``, ``asn_col``, ``proxy_col``,
    ``user_agent_col``, ``payment_col``) of a prompt frame; see :class:`Network`.

    A proxy column may be boolean, numeric (non-zero = proxy) or text: a provider's name (or any value other
    than empty, 0, false, no, none) marks a proxy / hosting network.

    Raises:
        InputError: a column holds nested values.
    """
    ip = _network_column(frame, cfg.ip_col)
    asn = _network_column(frame, cfg.asn_col)
    raw_proxy = _network_column(frame, cfg.proxy_col)
    ua = _network_column(frame, cfg.user_agent_col)
    pay = _network_column(frame, cfg.payment_col)
    net = client_network(ip) if ip is not None else asn.cast(pl.String).alias("net") if asn is not None else None
    proxy = None
    if raw_proxy is not None:
        if raw_proxy.dtype == pl.Boolean:
            proxy = raw_proxy.fill_null(False)
        elif raw_proxy.dtype.is_numeric():
            proxy = (raw_proxy.fill_null(0) != 0).alias(raw_proxy.name)
        else:
            text = raw_proxy.cast(pl.String).str.strip_chars().str.to_lowercase()
            proxy = (text.is_not_null() & ~text.is_in(list(_NO))).alias(raw_proxy.name)
    present = tuple(
        name for name, s in zip(NETWORK_SIGNALS, (ip, asn, raw_proxy, ua, pay), strict=True) if s is not None
    )
    return Network(
        net=net,
        ip=ip.cast(pl.String).str.strip_chars() if ip is not None else None,
        asn=asn.cast(pl.String) if asn is not None else None,
        proxy=proxy,
        user_agent=ua.cast(pl.String) if ua is not None else None,
        payment=pay.cast(pl.String) if pay is not None else None,
        present=present,
    )
