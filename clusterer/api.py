"""In-process API: ``clusterer.cluster(logs) -> Result`` and ``clusterer.assign(logs, registry)``.

The CLI calls these same functions. Everything that can be checked cheaply (argument types, the
configuration, the output directory, the registry, the input's columns and values) is checked before the
heavy libraries (torch, FAISS, Numba, SciPy) are imported, so a mistake fails in about a second.

Example::

    import polars as pl, clusterer

    day = pl.read_parquet("logs/2026-11-26.parquet")      # or a pandas / pyarrow table, or paths
    result = clusterer.cluster(day, model="static")        # overrides: any config field
    result.clusters.filter(pl.col("flagged"))              # polars DataFrames
    result.write("out/2026-11-26")                         # what `clusterer run` writes
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .config import SECTIONS, RunConfig, load_config, options
from .errors import ConfigError, OutputError
from .io import artifacts
from .io.ingest import Prompts, id_order, read_frame, read_logs

if TYPE_CHECKING:
    from .progress import Reporter
    from .result import Result
    from .store.registry import Registry

# short names for the options a caller sets most: the CLI's options, derived from the config fields marked
# as options (``config.option``); any field is reachable as ``section={"field": value}``,
# ``section__field=value`` or ``**{"section.field": value}``
ALIASES = {o.name: o.key for o in options()}
_TOP = {"seed", "device", "quiet"}
_SECTIONS = set(SECTIONS)
_PREDICTED_DIM = {"hashing": 384, "default": 384}  # known before the model loads; 'static' from static_dims


def resolve_config(config: Any = None, **overrides: Any) -> RunConfig:
    """A :class:`RunConfig` from ``config`` (None, a RunConfig, a TOML path or a dict shaped like the TOML
    file) with ``overrides`` applied (see :data:`ALIASES`; None values are ignored).

    Raises:
        TypeError: ``config`` of another type, or an unknown override name.
        ConfigError: an unknown field, a wrong type or an out-of-range value.
    """
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ALIASES and not (key in _SECTIONS and isinstance(value, dict)):
            flat[ALIASES[key]] = value
        elif key in _TOP or ("." in key and key.split(".", 1)[0] in _SECTIONS):
            flat[key] = value
        elif "__" in key and key.split("__", 1)[0] in _SECTIONS:
            flat[key.replace("__", ".", 1)] = value
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise TypeError(f"{key}= must be a dict of [{key}] fields (got {type(value).__name__})")
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            known = ", ".join(sorted([*ALIASES, *_TOP, *_SECTIONS]))
            raise TypeError(f"unexpected keyword argument {key!r}; known: {known}, or section__field=value")
    if config is None or isinstance(config, (str, Path)):
        return load_config(Path(config) if config is not None else None, **flat)
    if isinstance(config, RunConfig):
        return _replace(config, flat)
    if isinstance(config, dict):
        base = json.loads(json.dumps(config))  # a deep copy
        for key, value in flat.items():
            section, _, name = key.rpartition(".")
            (base.setdefault(section, {}) if section else base)[name or key] = value
        return _from_dict(base)
    raise TypeError(f"config must be None, a RunConfig, a TOML file path or a dict (got {type(config).__name__})")


def _replace(cfg: RunConfig, flat: dict[str, Any]) -> RunConfig:
    """``cfg`` with dotted-key overrides, each checked as a TOML value would be."""
    from .config import _build

    if not flat:
        return cfg
    per: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in flat.items():
        section, _, name = key.partition(".")
        if name:
            per.setdefault(section, {})[name] = value
        else:
            top[key] = value
    for section, values in per.items():
        top[section] = _build(type(getattr(cfg, section)), section, values, base=getattr(cfg, section))
    return _build(RunConfig, "run", top, base=cfg)


def _from_dict(raw: dict[str, Any]) -> RunConfig:
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table")
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return load_config(None, **flat)


def _is_table(logs: Any) -> bool:
    mod = type(logs).__module__.split(".")[0]
    return isinstance(logs, (pl.DataFrame, pl.LazyFrame)) or mod in ("pandas", "pyarrow")


def _paths(logs: Any) -> list[str | Path]:
    if isinstance(logs, (str, Path)):
        return [logs]
    if isinstance(logs, Sequence) and all(isinstance(p, (str, Path)) for p in logs):
        return list(logs)
    raise TypeError(
        "logs must be a polars DataFrame / LazyFrame, a pandas DataFrame, a pyarrow Table, a path or a list of "
        f"paths (got {type(logs).__module__}.{type(logs).__name__})"
    )


def read_input(
    logs: Any,
    cfg: RunConfig,
    engine: Any = None,
    whole_lines: bool = False,
    texts: bool = True,
    cache: dict[Any, Any] | None = None,
) -> Prompts:
    """Validated prompts from a table or from log paths (what ``clusterer run`` accepts); ``engine`` (a
    :class:`clusterer.run.engine.LocalEngine`) reads the files where it runs its stages; ``whole_lines``: a
    CSV file whose last line has no line break (one still being written) is an error, not a warning;
    ``texts`` False: log files are read without their texts, which are read back as needed (a table is held
    whole); ``cache``: the files' rows kept between reads, a file unchanged not read again
    (:func:`~clusterer.io.ingest.read_logs`).

    Raises:
        TypeError: ``logs`` is neither a table nor paths.
        InputError: bad input (names the file, column and example rows).
    """
    if _is_table(logs):
        return read_frame(logs, cfg.ingest)
    map_files = engine.map_files if engine is not None else None
    return read_logs(_paths(logs), cfg.ingest, map_files, whole_lines, texts, cache)


def _inside(a: Path, b: Path) -> bool:
    """Whether path ``a`` is ``b`` or lies under it."""
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def check_out(
    out: str | Path, logs: Any = None, registry: str | Path | None = None, history: str | Path | None = None
) -> Path:
    """Check an output directory before any work: writable, not an input directory (a later run would read
    its own outputs as input), not the registry or history folder, and holding nothing clusterer did not
    write. Returns it as a Path.

    Raises:
        TypeError: ``out`` is not a path.
        OutputError: any of the above.
    """
    if not isinstance(out, (str, Path)):
        raise TypeError(f"out must be a str or Path (got {type(out).__name__})")
    if not str(out).strip():  # Path("") is the working directory: an empty flag would replace it
        raise OutputError("--out is empty; name the output directory (e.g. --out runs/today)")
    out = Path(out)
    held = _input_holding(out, logs)
    if held is not None:
        raw, kind = held
        where = f"inside the input directory {raw}" if kind == "directory" else f"under the input glob {raw!r}"
        raise OutputError(
            f"--out {out} is {where}: the next run would read this run's outputs as logs; write the outputs elsewhere"
        )
    for other, flag in ((registry, "--registry"), (history, "--history")):
        if other is not None and (_inside(Path(other), out) or _inside(out, Path(other))):
            raise OutputError(f"--out {out} and {flag} {other} overlap; keep them in separate directories")
        under = _input_holding(Path(other), logs) if other is not None else None
        if under is not None:  # its parquet files would be read as logs by the next run of the same input
            raise OutputError(f"{flag} {other} is inside the input {under[0]}: the next run would read it as logs")
    from .io.outputs import check_writable

    check_writable(out)
    return out


def _input_holding(path: Path, logs: Any, files: bool = False) -> tuple[str, str] | None:
    """The input of ``logs`` that ``path`` lies in, if any: (the input as given, "directory" / "glob" /
    "file"); an input file counts only with ``files`` (a file output must not replace it)."""
    if logs is None or _is_table(logs):
        return None
    for raw in _paths(logs):
        p = Path(raw)
        if p.exists():
            if (p.is_dir() or files) and _inside(path, p):
                return str(raw), "directory" if p.is_dir() else "file"
        elif _glob_reaches(str(raw), path, files):
            return str(raw), "glob"
    return None


def _glob_reaches(pattern: str, path: Path, is_file: bool) -> bool:
    """Whether the glob ``pattern`` could read ``path`` (a file output) or files written in or under ``path``
    (an output directory). Without ``**`` a glob reads files at one depth, in the directories its leading
    parts match: an output folder above that depth, or off those parts, is safe (``logs/*.parquet`` never
    reads ``runs/today/``, nor ``logs/run1/``). With ``**`` anything under its fixed root may be read. A
    pattern without a wildcard (a path that does not exist) reads nothing."""
    from fnmatch import fnmatchcase

    root = _glob_root(pattern)
    if root is None:
        return False
    rest = Path(pattern).parts[len(root.parts) :]
    if any("**" in p for p in rest):
        return _inside(path, root)
    pat = (*root.resolve().parts, *rest)
    target = path.resolve().parts
    if is_file:
        return len(pat) == len(target) and all(fnmatchcase(t, p) for t, p in zip(target, pat, strict=True))
    dirs = pat[:-1]  # the directories the glob reads files in; outputs go in ``path`` and folders below it
    return len(dirs) >= len(target) and all(fnmatchcase(t, p) for t, p in zip(target, dirs, strict=False))


def check_out_file(out: str | Path, logs: Any = None, keep: Sequence[tuple[str | Path, str]] = ()) -> Path:
    """Check a file a command writes (``assign --out``, ``report --out``, ``fingerprints export --out``) before
    any work: not one of the input logs nor inside an input directory or glob (``logs``), and not one of
    ``keep`` — (path, what it is) pairs: a file it must not replace or a folder it must not write into (a
    run's output set, a key file). Returns it as a Path.

    Raises:
        OutputError: it would replace or write into one of them.
    """
    if not str(out).strip():
        raise OutputError("--out is empty; name the file to write")
    out = Path(out)
    held = _input_holding(out, logs, files=True)
    if held is not None:
        raise OutputError(f"--out {out} is the input {held[0]} or inside it; write it elsewhere")
    for path, what in keep:
        if _inside(out, Path(path)):
            where = "is inside" if Path(path).is_dir() else "would overwrite"
            raise OutputError(f"--out {out} {where} {what} ({path}); write it elsewhere")
    return out


def _glob_root(pattern: str) -> Path | None:
    if not any(ch in pattern for ch in "*?["):
        return None
    parts = Path(pattern).parts
    fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if any(ch in p for ch in "*?["))]]
    return Path(*fixed) if fixed else Path(".")


def load_checked_registry(registry: str | Path, cfg: RunConfig) -> Registry:
    """Load a registry and check it against the configured model before any work.

    Raises:
        InputError: a damaged registry, or one whose centroids have another dimension than the model's.
    """
    from .store.registry import check_dim, load_registry

    reg = load_registry(Path(registry))
    model = cfg.embed.model
    dim = cfg.embed.static_dims if model == "static" else _PREDICTED_DIM.get(model)
    if dim is not None:
        check_dim(reg, Path(registry), dim, model)
    return reg


def cluster(
    logs: Any,
    config: Any = None,
    *,
    registry: str | Path | None = None,
    history: str | Path | None = None,
    reporter: Reporter | None = None,
    **overrides: Any,
) -> Result:
    """Cluster one day of prompt logs in memory; returns a :class:`~clusterer.result.Result`.

    ``logs``: a polars DataFrame / LazyFrame, a pandas DataFrame, a pyarrow Table, or log file paths / globs
    / directories (what ``clusterer run`` accepts), with columns ``prompt_id`` (optional), ``account_id``,
    ``timestamp`` and ``text`` (or chat ``messages``). ``config``: None (defaults), a :class:`RunConfig`, a
    TOML file path or a dict shaped like it; ``overrides`` set fields by short name (``model="static"``,
    ``k=20``), ``section__field=value`` or ``section={...}``. ``registry``: a campaign registry directory
    for stable campaign IDs across days (saved by ``Result.write``); ``history``: a ``clusterer history``
    folder to annotate clusters with earlier days. ``engine="ray"`` (and ``address=...``) runs the stages' heavy
    primitives on a Ray cluster (a local one when no address is given); the results are the same.

    Raises:
        TypeError: an argument of the wrong type or an unknown override.
        ConfigError: a bad configuration value (also a ``ValueError``).
        InputError: bad input or a damaged registry, naming file, column and example rows (a ``ValueError``).
        BackendUnavailable: ``device="cuda"`` without a visible GPU.
    """
    cfg = resolve_config(config, **overrides)
    from .progress import Reporter

    reporter = reporter or Reporter(quiet=cfg.quiet)
    reg = None
    if registry is not None:
        if not isinstance(registry, (str, Path)):
            raise TypeError(f"registry must be a str or Path (got {type(registry).__name__})")
        reg = load_checked_registry(registry, cfg)
    if history is not None:
        if not isinstance(history, (str, Path)):
            raise TypeError(f"history must be a str or Path (got {type(history).__name__})")
        from .store.history import read_history

        read_history(Path(history))  # a damaged history is refused here, not after the clustering
    engine = None
    if cfg.engine.kind != "local":  # reading the input is the engine's first stage
        from .accel.backend import Device, resolve
        from .run.engines import make_engine

        engine = make_engine(cfg, resolve(Device(cfg.device)))
    try:
        with reporter.stage("ingest"):
            prompts = read_input(logs, cfg, engine)
        from .run import pipeline  # the heavy imports, after every cheap check

        # the day clustered in prompt-ID order whatever order its rows came in (kNN and HDBSCAN break ties by
        # position), its rows given back in input order (a stream window's rows come in that order already)
        order = id_order(prompts)
        if order is not None:
            prompts = dataclasses.replace(prompts, frame=prompts.frame[order])
        result = pipeline.compute(
            prompts,
            cfg,
            reporter=reporter,
            registry=reg,
            registry_dir=Path(registry) if registry is not None else None,
            history=Path(history) if history is not None else None,
            engine=engine,
        )
        return result if order is None else result.rows_in(np.argsort(order))
    finally:
        if engine is not None:
            engine.close()


ASSIGN_SCHEMA = {
    "run_id": pl.String,
    "day": pl.Date,
    "prompt_id": pl.String,
    "account_id": pl.String,
    "campaign_id": pl.String,
    "containment": pl.Float32,
}
ASSIGN_NOT_NULL = frozenset({"run_id", "day", "prompt_id", "account_id", "containment"})


@dataclass
class Assignment:
    """``labels``: one row per input prompt, in input order (``run_id``, ``day``, ``prompt_id``,
    ``account_id``, ``campaign_id`` or null, ``containment``: the share of the best campaign's scaffold set
    that the prompt holds)."""

    labels: pl.DataFrame
    manifest: dict[str, Any]

    def write(self, path: str | Path) -> Path:
        """Write ``labels`` as one parquet file, atomically (temp file + rename), ``run_id`` and the day in it.

        Raises:
            OutputError: the file cannot be written.
        """
        from .io.outputs import write_parquet

        path = Path(path)
        if path.is_dir():
            raise OutputError(f"--out {path} is a directory; `assign` writes one parquet file")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(self.labels, path, ASSIGN_NOT_NULL)
        return path


def assign(logs: Any, registry: str | Path, config: Any = None, **overrides: Any) -> Assignment:
    """Label prompts with the known campaigns of a registry, without re-clustering (``clusterer assign``).

    ``logs`` and ``config`` / ``overrides`` as for :func:`cluster`.

    Raises:
        TypeError: an argument of the wrong type. InputError: bad input, or a missing, damaged or empty
        registry. ConfigError: a bad configuration value.
    """
    import xxhash

    from .store.registry import assign_to_known, load_campaigns
    from .text.normalise import normalise
    from .text.skeleton import day_common_cores, shingle_sets

    cfg = resolve_config(config, **overrides)
    if not isinstance(registry, (str, Path)):
        raise TypeError(f"registry must be a str or Path (got {type(registry).__name__})")
    reg = load_campaigns(Path(registry))
    prompts = read_input(logs, cfg)
    norm = normalise(prompts.frame["text"], cfg.normalise)
    # with repeated rare words masked as the registry's skeletons were (a persona name through a scaffold)
    indptr, hashes = shingle_sets(norm.text, cfg.skeleton.ngram, day_common_cores(norm.text, cfg.skeleton))
    ids, cont = assign_to_known(
        reg, indptr, hashes, cfg.registry.assign_min_containment, cfg.registry.assign_min_shingles
    )
    from .io.ingest import content_digest
    from .run.day import day_of

    day = day_of(prompts.frame["timestamp"])
    material = f"assign|{content_digest(prompts.frame)}|{sorted(reg.campaigns['campaign_id'].to_list())}"
    run_id = f"{day.isoformat() if day else 'empty'}-{xxhash.xxh3_64_hexdigest(material.encode())[:12]}"
    labels = pl.DataFrame(
        {
            "run_id": pl.Series([run_id] * prompts.frame.height, dtype=pl.String),
            "day": pl.Series([day] * prompts.frame.height, dtype=pl.Date),
            "prompt_id": prompts.frame["prompt_id"],
            "account_id": prompts.frame["account_id"],
            "campaign_id": pl.Series(ids, dtype=pl.String),
            "containment": pl.Series(cont, dtype=pl.Float32),
        },
        schema=ASSIGN_SCHEMA,
    )
    manifest = {
        "run_id": run_id,
        "day": day.isoformat() if day else None,
        "registry": str(registry),
        "prompts": labels.height,
        "matched": int(labels["campaign_id"].is_not_null().sum()),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    return Assignment(labels=labels, manifest=manifest)


def run(
    logs: Any,
    out: str | Path,
    config: Any = None,
    *,
    registry: str | Path | None = None,
    history: str | Path | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """``clusterer run``: cluster ``logs`` and write the output set to ``out``; returns the manifest written.

    Raises:
        InputError, ConfigError, BackendUnavailable, OutputError: problems the user can fix.
    """
    check_out(out, logs, registry, history)
    return cluster(logs, config, registry=registry, history=history, **overrides).write(out)


def verify(out_dir: str | Path) -> dict[str, Any]:
    """Check a finished run's output set against its manifest (sizes and SHA-256); returns the manifest.

    Raises:
        InputError: a missing, damaged or mixed set.
    """
    return artifacts.verify_set(Path(out_dir), "run")
