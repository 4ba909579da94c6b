"""Ingest: one day of raw prompt logs (Parquet, JSONL or CSV) -> a validated prompt frame.

Accepts one file, several files, a glob or a directory of part files. Files are scanned lazily with polars
and only the needed columns are collected. Every problem a user can fix is raised as :class:`InputError`
naming the file, the column and example rows.
"""

from __future__ import annotations

import codecs
import glob as globlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import xxhash

from .config import IngestConfig
from .errors import InputError

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
_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class InputFile:
    path: str
    format: str
    bytes: int
    xxh3_64: str  # fingerprint of the file's bytes
    rows: int


@dataclass(frozen=True, slots=True)
class Prompts:
    """Validated prompts, in input order.

    ``frame`` columns: ``_row`` (u32), ``prompt_id`` (str), ``account_id`` (str), ``timestamp``
    (datetime[us, UTC], may be null), ``text`` (str, may be null), then the input's extra columns.
    """

    frame: pl.DataFrame
    files: tuple[InputFile, ...]
    extra_columns: tuple[str, ...]
    generated_prompt_ids: bool


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
    """(line number, byte offset) of the first invalid UTF-8 sequence, or None. Streams the file."""
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


def _scan_one(path: Path, kind: str, cfg: IngestConfig) -> pl.LazyFrame | None:
    """Lazy frame for one file, or None for a zero-byte file (no rows, no columns)."""
    if path.stat().st_size == 0:
        return None
    try:
        if kind == "parquet":
            return pl.scan_parquet(path)
        bad = _first_bad_utf8(path)
        if bad is not None and cfg.on_bad_utf8 == "error":
            line, off = bad
            raise InputError(
                f"{path}: invalid UTF-8 bytes at line {line} (byte offset {off}); re-encode the "
                "file as UTF-8 or pass --on-bad-utf8 replace to read them as U+FFFD"
            )
        if kind == "csv":
            return pl.scan_csv(path, encoding="utf8-lossy" if bad else "utf8", infer_schema_length=10000)
        if bad is not None:  # JSONL with bad bytes: decode with replacement, then parse from memory
            text = path.read_bytes().decode("utf-8", errors="replace").encode("utf-8")
            return pl.read_ndjson(io.BytesIO(text), infer_schema_length=10000).lazy()
        return pl.scan_ndjson(path, infer_schema_length=10000)
    except InputError:
        raise
    except (pl.exceptions.PolarsError, OSError) as err:
        raise InputError(f"{path}: cannot be read as {kind}: {err}") from err


def _flatten_messages(col: str) -> pl.Expr:
    """Chat format: system prompt and user turns, in order, joined by newlines."""
    el = pl.element()
    return (
        pl.col(col)
        .list.eval(
            pl.when(el.struct.field("role").cast(pl.String).str.to_lowercase().is_in(["system", "user"]))
            .then(el.struct.field("content").cast(pl.String))
            .otherwise(None)
        )
        .list.drop_nulls()
        .list.join("\n")
    )


def _rows_example(df: pl.DataFrame, mask: pl.Series, files: list[Path]) -> str:
    bad = df.filter(mask).head(_EXAMPLES)
    parts = [f"{files[f]} row {r}" for f, r in zip(bad["_file"].to_list(), bad["_file_row"].to_list(), strict=True)]
    return ", ".join(parts)


def _parse_timestamps(df: pl.DataFrame, name: str, files: list[Path]) -> pl.Series:
    """Parse the raw timestamp column ``__ts`` (reported to users as ``name``) to datetime[us, UTC]."""
    col = "__ts"
    s = df[col]
    dt = s.dtype
    if dt == pl.Null:
        return pl.Series("timestamp", [None] * len(s), dtype=pl.Datetime("us", "UTC"))
    if isinstance(dt, pl.Datetime):
        out = s.dt.cast_time_unit("us")
        return (out.dt.replace_time_zone("UTC") if dt.time_zone is None else out.dt.convert_time_zone("UTC")).alias(
            "timestamp"
        )
    if dt == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp")
    if dt.is_integer() or dt.is_float():
        # epoch numbers: the magnitude tells seconds, milliseconds or microseconds
        mx = s.abs().max() or 0
        unit = 1_000_000 if mx < 1e11 else (1_000 if mx < 1e14 else 1)
        return (
            (s.cast(pl.Float64) * unit)
            .cast(pl.Int64)
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC")
            .alias("timestamp")
        )
    if dt == pl.String:
        parsed = s.str.strip_chars().str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
        if parsed.null_count() > s.null_count():
            # mixed offsets or plain dates: second try with a tolerant per-value format
            alt = s.str.strip_chars().str.to_datetime(format="%Y-%m-%d", time_unit="us", time_zone="UTC", strict=False)
            parsed = parsed.fill_null(alt)
        bad = parsed.is_null() & s.is_not_null() & (s.str.strip_chars() != "")
        if bad.any():
            ex = df.filter(bad).head(_EXAMPLES)
            shown = "; ".join(
                f"{files[f]} row {r}: {v!r}" for f, r, v in zip(ex["_file"], ex["_file_row"], ex[col], strict=True)
            )
            raise InputError(
                f"column '{name}' has {int(bad.sum())} unparseable timestamps (e.g. {shown}); "
                "expected ISO 8601 (2026-11-26T13:05:00Z), a datetime column or epoch seconds"
            )
        return parsed.alias("timestamp")
    raise InputError(f"column '{name}' has type {dt}, expected a datetime, an ISO 8601 string or epoch number")


def read_logs(paths: Sequence[str | Path], cfg: IngestConfig) -> Prompts:
    """Read and validate one day of logs.

    ``paths`` are files, globs or directories. ``cfg.fill_account`` replaces null / empty accounts (None
    makes them an error); ``cfg.new_prompt_ids`` numbers rows instead of reading the prompt_id column.

    Raises:
        InputError: missing column, duplicate prompt IDs, null accounts, unparseable timestamps,
        invalid UTF-8, unreadable files or an empty selection of files.
    """
    files = discover(paths, cfg.format)
    frames: list[pl.DataFrame] = []
    infos: list[InputFile] = []
    for fi, (path, kind) in enumerate(files):
        lf = _scan_one(path, kind, cfg)
        if lf is None:
            infos.append(InputFile(str(path), kind, 0, _fingerprint(path), 0))
            continue
        try:
            schema = lf.collect_schema()
        except pl.exceptions.PolarsError as err:
            raise InputError(f"{path}: cannot be read as {kind}: {err}") from err
        names = list(schema.names())
        has_text = cfg.text_col in names
        if not has_text and cfg.messages_col not in names:
            raise InputError(
                f"{path}: missing column '{cfg.text_col}' (nor a chat '{cfg.messages_col}' column); "
                f"columns present: {', '.join(names) or '(none)'}; pass --text-col NAME"
            )
        for col, flag in ((cfg.account_col, "--account-col"), (cfg.timestamp_col, "--timestamp-col")):
            if col not in names:
                raise InputError(
                    f"{path}: missing column '{col}'; columns present: {', '.join(names)}; pass {flag} NAME"
                )
        if has_text:
            text = pl.col(cfg.text_col)
            if schema[cfg.text_col] == pl.Binary:
                text = text.cast(pl.String, strict=False)
            elif schema[cfg.text_col] != pl.String:
                text = text.cast(pl.String)
        else:
            if not isinstance(schema[cfg.messages_col], pl.List):
                raise InputError(
                    f"{path}: column '{cfg.messages_col}' must be a list of {{role, content}} "
                    f"(got {schema[cfg.messages_col]})"
                )
            text = _flatten_messages(cfg.messages_col)
        drop = {cfg.text_col, cfg.messages_col, cfg.account_col, cfg.timestamp_col, cfg.prompt_id_col}
        extras = [c for c in names if c not in drop and not c.startswith("_")]
        sel = [
            text.alias("__text"),
            pl.col(cfg.account_col).alias("__account"),
            pl.col(cfg.timestamp_col).alias("__ts"),
        ]
        if cfg.prompt_id_col in names and not cfg.new_prompt_ids:
            sel.append(pl.col(cfg.prompt_id_col).cast(pl.String).alias("__pid"))
        sel += [pl.col(c) for c in extras]
        try:
            df = lf.select(sel).collect()
        except pl.exceptions.PolarsError as err:
            raise InputError(f"{path}: cannot be read as {kind}: {err}") from err
        if schema[cfg.text_col if has_text else cfg.messages_col] == pl.Binary and has_text:
            raw = lf.select(pl.col(cfg.text_col)).collect()[cfg.text_col]
            bad = df["__text"].is_null() & raw.is_not_null()
            if bad.any():
                rows = bad.arg_true().head(_EXAMPLES).to_list()
                raise InputError(
                    f"{path}: column '{cfg.text_col}' holds invalid UTF-8 bytes in {int(bad.sum())} "
                    f"rows (e.g. rows {', '.join(map(str, rows))}); re-encode them as UTF-8"
                )
        df = df.with_columns(
            pl.lit(fi, pl.UInt32).alias("_file"), pl.int_range(0, pl.len(), dtype=pl.UInt32).alias("_file_row")
        )
        frames.append(df)
        infos.append(InputFile(str(path), kind, path.stat().st_size, _fingerprint(path), df.height))

    paths_only = [p for p, _ in files]
    if frames:
        try:
            df = pl.concat(frames, how="diagonal_relaxed")
        except pl.exceptions.PolarsError as err:
            raise InputError(f"input files have incompatible column types: {err}") from err
    else:
        df = pl.DataFrame(
            schema={
                "__text": pl.String,
                "__account": pl.String,
                "__ts": pl.Datetime("us", "UTC"),
                "_file": pl.UInt32,
                "_file_row": pl.UInt32,
            }
        )
    df = df.with_columns(pl.int_range(0, pl.len(), dtype=pl.UInt32).alias("_row"))

    # accounts
    acc = df["__account"].cast(pl.String)
    missing = acc.is_null() | (acc.str.strip_chars() == "")
    if missing.any():
        if cfg.fill_account is None:
            raise InputError(
                f"column '{cfg.account_col}' is null or empty in {int(missing.sum())} rows "
                f"(e.g. {_rows_example(df, missing, paths_only)}); drop them or pass --fill-account"
            )
        acc = pl.select(pl.when(missing).then(pl.lit(cfg.fill_account)).otherwise(acc)).to_series()
    ts = _parse_timestamps(df, cfg.timestamp_col, paths_only)

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
                f"(e.g. {_rows_example(df, null, paths_only)}); fill them or pass --new-prompt-ids"
            )
        dup = pid.is_duplicated()
        if dup.any():
            vals = pid.filter(dup).unique(maintain_order=True).head(_EXAMPLES).to_list()
            raise InputError(
                f"column '{cfg.prompt_id_col}' has {int(dup.sum())} rows sharing "
                f"{pid.filter(dup).n_unique()} duplicated IDs (e.g. {', '.join(map(repr, vals))} at "
                f"{_rows_example(df, dup, paths_only)}); IDs must be unique to join on; "
                "de-duplicate the logs or pass --new-prompt-ids"
            )
    extras = [c for c in df.columns if not c.startswith("_")]
    frame = pl.DataFrame(
        {
            "_row": df["_row"],
            "prompt_id": pid.alias("prompt_id"),
            "account_id": acc.alias("account_id"),
            "timestamp": ts.alias("timestamp"),
            "text": df["__text"].alias("text"),
        }
    ).hstack(df.select(extras))
    return Prompts(frame=frame, files=tuple(infos), extra_columns=tuple(extras), generated_prompt_ids=generated)
