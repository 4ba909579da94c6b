"""Shareable campaign fingerprints: what a peer provider needs to recognise a campaign, and no user text.

``clusterer fingerprints export --registry REG --out FILE`` writes one JSON document: per known campaign of
the registry, the *keyed* hashes of its scaffold shingles (every variant's word n-gram shingles, as the
registry keeps them for ``assign``), a MinHash signature over those keyed hashes, the slot structure of its
template (word counts of the scaffold runs and where the slots are — no words), its capability tags (from a
fixed lexicon) and its first / last seen dates. The key is a secret the two providers agree on (at least 16
bytes, in a file or ``$CLUSTERER_FINGERPRINT_KEY``); each shingle hash (xxh3-64 of the normalised words)
is hashed again with BLAKE2b keyed with it, so a file alone, without the key, gives nothing to test a guess
against. The file carries a key check value (BLAKE2b of a fixed string under the key) so the receiver can
tell a wrong key from "no match".

``clusterer fingerprints match FILE... RUN_DIR`` reads a finished run's input prompts back (checked against
the manifest's fingerprints), shingles them as the run did, keys the shingles that recur in the day (a
campaign's prompts share their scaffold), and gives each prompt the peer campaign whose keyed scaffold
shingles it holds most of (the ``assign`` rule: at least ``registry.assign_min_shingles`` of them and
``registry.assign_min_containment`` of the campaign's set). A cluster matches a peer campaign when at least
``registry.peer_min_cluster_share`` of its prompts do. The run's ``clusters.parquet`` gets ``peer_provider``,
``peer_campaign`` and ``peer_match_share``, ``assignments.parquet`` gets ``peer_provider`` and
``peer_campaign`` (the prompt's own match: a matched cluster can hold a few ordinary prompts, which do not
carry the scaffold and are not marked), and the manifest a ``fingerprints`` record;
the set is rewritten through :func:`clusterer.io.artifacts.amend_set`, so its hashes stay valid.

What a file reveals (README "Sharing campaign fingerprints"): to anyone, the number of campaigns, their
shingle-set sizes, slot structures, tags, dates and the provider's opaque campaign references; to a key
holder, also whether a guessed word n-gram is in a campaign's scaffold (a membership test per guess, which
is what matching needs). No prompt text, payload, account, organisation, network or volume is in it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..errors import InputError

FORMAT = "clusterer-campaign-fingerprints"
VERSION = 1
KEY_ENV = "CLUSTERER_FINGERPRINT_KEY"
MIN_KEY_BYTES = 16
NUM_PERM = 128
_CHECK = b"clusterer fingerprint key check v1"
SLOT = "{…}"


def load_key(key_file: Path | None) -> bytes:
    """The shared key: the bytes of ``key_file`` (surrounding whitespace stripped), else ``$CLUSTERER_FINGERPRINT_KEY``.

    Raises:
        InputError: no key, an unreadable file, or a key shorter than 16 bytes.
    """
    if key_file is not None:
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as err:
            raise InputError(f"--key-file {key_file} cannot be read: {err.strerror or err}") from err
        where = f"--key-file {key_file}"
    else:
        key = os.environ.get(KEY_ENV, "").strip().encode()
        where = f"${KEY_ENV}"
        if not key:
            raise InputError(
                f"no fingerprint key: pass --key-file FILE or set ${KEY_ENV} to the secret you agreed with the peer "
                f"(at least {MIN_KEY_BYTES} bytes, e.g. `openssl rand -hex 32`)"
            )
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"{where}: the key has {len(key)} bytes; use at least {MIN_KEY_BYTES} (e.g. 32 random bytes)")
    return key[:64]  # BLAKE2b keys are at most 64 bytes


def key_check(key: bytes) -> str:
    """A value that tells whether two parties hold the same key, and nothing about the key."""
    return hashlib.blake2b(_CHECK, key=key, digest_size=8).hexdigest()


def keyed(hashes: NDArray[np.uint64], key: bytes) -> NDArray[np.uint64]:
    """BLAKE2b-64 of each 64-bit shingle hash under ``key`` (a pseudo-random function: without the key a keyed
    hash gives nothing to test a guessed shingle against)."""
    out = np.empty(len(hashes), np.uint64)
    raw = np.ascontiguousarray(hashes, dtype="<u8").tobytes()
    for i in range(len(hashes)):
        d = hashlib.blake2b(raw[8 * i : 8 * i + 8], key=key, digest_size=8).digest()
        out[i] = int.from_bytes(d, "little")
    return out


def minhash(values: NDArray[np.uint64], seeds: NDArray[np.uint64]) -> list[int]:
    """MinHash signature of a set of 64-bit values: per seed, the least splitmix64(value ^ seed), as 32 bits."""
    from ..accel.hashing import mix64

    if len(values) == 0:
        return [0xFFFFFFFF] * len(seeds)
    mixed = mix64((values[None, :] ^ seeds[:, None]).ravel()).reshape(len(seeds), len(values))
    return [int(v) for v in (mixed.min(axis=1) >> np.uint64(32))]


def _seeds(key: bytes) -> NDArray[np.uint64]:
    from ..accel.hashing import perm_seeds

    return perm_seeds(NUM_PERM, int.from_bytes(hashlib.blake2b(b"minhash seeds", key=key, digest_size=8).digest()))


def slot_structure(template: str) -> list[int | str]:
    """The template's shape without its words: word counts of its scaffold runs, ``"{…}"`` where a slot is."""
    out: list[int | str] = []
    for k, part in enumerate(template.split(SLOT)):
        if k:
            out.append(SLOT)
        n = len(part.split())
        if n:
            out.append(n)
    return out


def export_fingerprints(campaigns: pl.DataFrame, key: bytes, provider: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint document of a registry's ``campaigns`` table (see the module docstring); ``settings``:
    the shingling the receiver must use too (``ngram``, the ``normalise`` options)."""
    from ..campaigns.decisions import tags_of
    from .registry import aliases

    seeds = _seeds(key)
    root = aliases(campaigns)  # a campaign merged into another is exported under that one's ref
    out = []
    for r in campaigns.sort("campaign_id").iter_rows(named=True):
        sh = np.unique(np.asarray(r["scaffold_shingles"] or [], dtype=np.uint64))
        core = np.unique(np.asarray(r["shingles"] or [], dtype=np.uint64))
        ks, kc = np.unique(keyed(sh, key)), np.unique(keyed(core, key))
        out.append(
            {
                "ref": root[r["campaign_id"]],
                "first_seen": str(r["first_seen"]),
                "last_seen": str(r["last_seen"]),
                "days_seen": int(r["days_seen"]),
                "tags": tags_of(r["template"] or ""),
                "slot_structure": slot_structure(r["template"] or ""),
                "shingles": [f"{int(v):016x}" for v in ks],
                "core": [f"{int(v):016x}" for v in kc],
                "minhash": minhash(ks, seeds),
            }
        )
    from .. import __version__

    return {
        "format": FORMAT,
        "version": VERSION,
        "provider": provider,
        "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "tool_version": __version__,
        "key_check": key_check(key),
        "shingling": settings,
        "minhash": {"num_perm": NUM_PERM, "hash": "splitmix64(keyed shingle ^ seed) >> 32, seeds from the key"},
        "campaigns": out,
    }


@dataclass(frozen=True, slots=True)
class PeerFile:
    """A peer's fingerprint file: ``provider``, ``refs`` per campaign, ``shingles`` per campaign (keyed, uint64)."""

    path: Path
    provider: str
    refs: list[str]
    shingles: list[NDArray[np.uint64]]
    sha256: str


def read_fingerprints(path: Path, key: bytes, settings: dict[str, Any]) -> PeerFile:
    """Read and check a fingerprint file against our key and shingling ``settings``.

    Raises:
        InputError: unreadable or not a fingerprint file, another key, or other shingling settings.
    """
    try:
        raw = Path(path).read_bytes()
        doc = json.loads(raw)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"fingerprint file {path} cannot be read as JSON: {err}") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f'{path} is not a clusterer fingerprint file (no "format": "{FORMAT}")')
    if doc.get("version") != VERSION:
        raise InputError(f"{path}: fingerprint format version {doc.get('version')!r}; this clusterer reads {VERSION!r}")
    if not isinstance(doc.get("key_check"), str) or not isinstance(doc.get("campaigns"), list):
        missing = [k for k, t in (("key_check", str), ("campaigns", list)) if not isinstance(doc.get(k), t)]
        raise InputError(f"{path} is damaged: no valid {' or '.join(repr(k) for k in missing)}")
    if doc.get("key_check") != key_check(key):
        raise InputError(
            f"{path} was made with another key than yours (key check {doc.get('key_check')} vs {key_check(key)}); "
            "use the key agreed with its provider"
        )
    if _comparable(doc.get("shingling")) != _comparable(settings):
        raise InputError(
            f"{path} was shingled with {doc.get('shingling')}; this run used {settings}: both sides must use the "
            "same [skeleton] ngram and [normalise] options"
        )
    hexes = re.compile(r"^[0-9a-f]{16}$")
    refs, sets = [], []
    for k, c in enumerate(doc.get("campaigns") or []):
        vals = c.get("shingles") if isinstance(c, dict) else None
        if not isinstance(vals, list) or not all(isinstance(v, str) and hexes.match(v) for v in vals):
            raise InputError(f"{path}: campaign {k} has no valid 'shingles' list (16 hex digits each)")
        refs.append(str(c.get("ref") or f"#{k}"))
        sets.append(np.array([int(v, 16) for v in vals], dtype=np.uint64))
    provider = str(doc.get("provider") or Path(path).stem)
    return PeerFile(Path(path), provider, refs, sets, hashlib.sha256(raw).hexdigest())


# normalisation options that only change text carrying invisible characters or look-alike letters: a
# scaffold's plain words hash alike either way, so two sides that differ in them still compare (a file
# exported before these options existed lacks them)
_EVASION_FIELDS = ("strip_invisible", "fold_lookalikes")


def _comparable(settings: Any) -> Any:
    """Shingling settings without :data:`_EVASION_FIELDS` (anything else as it is)."""
    if not isinstance(settings, dict) or not isinstance(settings.get("normalise"), dict):
        return settings
    norm = {k: v for k, v in settings["normalise"].items() if k not in _EVASION_FIELDS}
    return {**settings, "normalise": norm}


def shingling_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What both sides must share to compare shingles, from a run config (as in manifest.json): the n-gram
    length and the normalisation options."""
    from ..config import NormaliseConfig, SkeletonConfig

    n = {f: (config.get("normalise") or {}).get(f, getattr(NormaliseConfig(), f)) for f in _NORMALISE_FIELDS}
    ngram = (config.get("skeleton") or {}).get("ngram", SkeletonConfig().ngram)
    return {"ngram": int(ngram), "normalise": n, "hash": "clusterer xxh3-64 word shingles v1"}


_NORMALISE_FIELDS = (
    "mask_urls",
    "mask_emails",
    "mask_ids",
    "mask_numbers",
    "strip_invisible",
    "fold_lookalikes",
    "max_chars",
)


def _run_prompts(run_dir: Path, manifest: dict[str, Any], ids: pl.Series, logs: list[Path] | None) -> pl.DataFrame:
    """The run's input prompts, read back from its recorded inputs (or ``logs``) and checked against the
    manifest's file fingerprints and the run's prompt IDs.

    Raises:
        InputError: inputs missing, changed, or not the run's rows.
    """
    import dataclasses

    from ..config import IngestConfig
    from ..io.ingest import read_logs, rows_of

    inputs = [i for i in manifest.get("inputs") or [] if isinstance(i, dict)]
    paths = [Path(p) for p in logs] if logs else [Path(i["path"]) for i in inputs if i.get("path")]
    missing = [str(p) for p in paths if not p.exists()]
    if logs and missing:
        raise InputError(f"--logs: {', '.join(missing[:3])} does not exist")
    if not paths or missing:
        raise InputError(
            f"{run_dir}: the run's input files are not at their recorded paths; pass them with --logs "
            "(they are read back to shingle the prompts)"
        )
    known = {f.name for f in dataclasses.fields(IngestConfig)}
    given = {k: v for k, v in (manifest.get("config", {}).get("ingest") or {}).items() if k in known}
    prompts = read_logs(paths, IngestConfig(**given))
    recorded = sorted(str(i.get("xxh3_64")) for i in inputs)
    if sorted(f.xxh3_64 for f in prompts.files) != recorded:
        raise InputError(
            f"{run_dir}: the input files ({', '.join(map(str, paths[:3]))}) are not the ones the run read "
            "(their xxh3-64 fingerprints differ from manifest.json)"
        )
    frame = rows_of(prompts.frame, ids)  # a stream window's rows are a part of the log it read
    if frame is None:
        raise InputError(f"{run_dir}: the input files' prompt IDs differ from assignments.parquet")
    return frame


def prompt_matches(
    texts: pl.Series, peers: list[PeerFile], key: bytes, config: dict[str, Any]
) -> tuple[list[str | None], list[str | None], NDArray[np.float32]]:
    """Each prompt's best peer campaign by its own shingles: (provider, peer campaign ref, containment);
    None where no campaign meets ``registry.assign_min_shingles`` and ``assign_min_containment``.

    Only shingles that recur in the day (in two prompts or more) are keyed: a campaign's prompts share their
    scaffold, and keying each distinct one-off payload shingle would cost most of the time."""
    import dataclasses

    from ..config import NormaliseConfig, RegistryConfig, SkeletonConfig
    from ..text.normalise import normalise
    from ..text.skeleton import day_common_cores, shingle_sets
    from .registry import Registry, assign_to_known

    fields = {f: v for f, v in (config.get("normalise") or {}).items() if f in _NORMALISE_FIELDS}
    reg_cfg = RegistryConfig(**{k: v for k, v in (config.get("registry") or {}).items() if k in _REGISTRY_FIELDS})
    norm = normalise(texts, NormaliseConfig(**fields))
    known = {f.name for f in dataclasses.fields(SkeletonConfig)}
    sk_cfg = SkeletonConfig(**{k: v for k, v in (config.get("skeleton") or {}).items() if k in known})
    # repeated rare words (a persona name through the scaffold) masked as the run's skeletons masked them: the
    # exported scaffold shingles were read off such skeletons
    indptr, hashes = shingle_sets(norm.text, sk_cfg.ngram, day_common_cores(norm.text, sk_cfg))
    recurring = _recurring(hashes)
    # each distinct recurring shingle keyed once (a scaffold shingle recurs in thousands of prompts)
    k_indptr, kept = _keep_sorted(indptr, hashes, recurring)
    kept = keyed(recurring, key)[np.searchsorted(recurring, kept)]
    names = [f"{p.provider}\x00{r}" for p in peers for r in p.refs]
    sets = [s.tolist() for p in peers for s in p.shingles]
    reg = Registry(
        campaigns=pl.DataFrame(
            {"campaign_id": names, "scaffold_shingles": sets},
            schema={"campaign_id": pl.String, "scaffold_shingles": pl.List(pl.UInt64)},
        ),
        daily=pl.DataFrame(),
    )
    ids, cont = assign_to_known(reg, k_indptr, kept, reg_cfg.assign_min_containment, reg_cfg.assign_min_shingles)
    prov = [i.split("\x00", 1)[0] if i else None for i in ids]
    ref = [i.split("\x00", 1)[1] if i else None for i in ids]
    return prov, ref, cont


def _recurring(hashes: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The distinct values found at least twice in ``hashes`` (each row's shingles are distinct, so: the
    shingles of two prompts or more), sorted. One sorted copy and a flag per value, without the inverse
    index ``np.unique`` would build (eight bytes per shingle of the day)."""
    srt = np.sort(hashes)
    twice = srt[1:][srt[1:] == srt[:-1]]
    del srt
    return np.unique(twice)


def _keep_sorted(
    indptr: NDArray[np.int64], hashes: NDArray[np.uint64], values: NDArray[np.uint64]
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """The CSR rows ``(indptr, hashes)`` cut to the hashes in ``values`` (sorted), a block of rows at a time."""
    from ..text.skeleton import SHINGLE_BLOCK, _isin_sorted

    n = len(indptr) - 1
    counts = np.zeros(n, np.int64)
    parts = [np.zeros(0, np.uint64)]
    for start in range(0, n, SHINGLE_BLOCK):
        stop = min(start + SHINGLE_BLOCK, n)
        block = hashes[indptr[start] : indptr[stop]]
        hit = _isin_sorted(block, values)
        rows = np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))
        counts[start:stop] = np.bincount(rows[hit], minlength=stop - start)
        parts.append(block[hit])
    return np.r_[0, np.cumsum(counts)].astype(np.int64), np.concatenate(parts)


_REGISTRY_FIELDS = ("min_jaccard", "min_cos", "assign_min_containment", "assign_min_shingles", "peer_min_cluster_share")


def cluster_matches(
    cluster_id: pl.Series, provider: list[str | None], ref: list[str | None], min_share: float
) -> pl.DataFrame:
    """Per cluster (≥ 0): the peer campaign most of its prompts match (``peer_provider``, ``peer_campaign``,
    ``peer_match_share``), null campaign when fewer than ``min_share`` of its prompts match one."""
    df = pl.DataFrame({"cluster_id": cluster_id, "p": provider, "r": ref}, schema_overrides={"p": pl.String})
    df = df.filter(pl.col("cluster_id") >= 0)
    size = df.group_by("cluster_id").agg(pl.len().alias("_size"))
    top = (
        df.filter(pl.col("r").is_not_null())
        .group_by("cluster_id", "p", "r")
        .agg(pl.len().alias("_n"))
        .sort(["cluster_id", "_n", "p", "r"], descending=[False, True, False, False])
        .group_by("cluster_id", maintain_order=True)
        .first()
    )
    out = size.join(top, on="cluster_id", how="left").with_columns(
        (pl.col("_n").fill_null(0) / pl.col("_size")).alias("peer_match_share")
    )
    ok = pl.col("peer_match_share") >= min_share
    return out.select(
        "cluster_id",
        pl.when(ok).then(pl.col("p")).otherwise(None).alias("peer_provider"),
        pl.when(ok).then(pl.col("r")).otherwise(None).alias("peer_campaign"),
        "peer_match_share",
    )


def match_run(files: list[Path], run_dir: Path, key: bytes, logs: list[Path] | None = None) -> dict[str, Any]:
    """Mark the clusters and prompts of a finished run that match the campaigns of peer fingerprint files, and
    rewrite the run's set through :func:`clusterer.io.artifacts.amend_set`. Returns the manifest record.

    Raises:
        InputError: a damaged set, unreadable or mismatched files (key, shingling), inputs not found or changed.
        OutputError: the run directory cannot be written.
    """
    from ..config import RegistryConfig
    from ..io import artifacts, outputs

    run_dir = Path(run_dir)
    if not (run_dir / artifacts.ASSIGNMENTS).is_file():
        raise InputError(f"{run_dir} is not a finished run (no {artifacts.ASSIGNMENTS}); the last argument is the run")
    manifest = artifacts.verify_set(run_dir, "run")
    config = manifest.get("config") or {}
    settings = shingling_settings(config)
    peers = [read_fingerprints(Path(f), key, settings) for f in files]
    assign = pl.read_parquet(run_dir / artifacts.ASSIGNMENTS)
    clusters = pl.read_parquet(run_dir / artifacts.CLUSTERS)
    frame = _run_prompts(run_dir, manifest, assign["prompt_id"], logs)
    prov, ref, _ = prompt_matches(frame["text"], peers, key, config)
    reg = RegistryConfig(**{k: v for k, v in (config.get("registry") or {}).items() if k in _REGISTRY_FIELDS})
    per_cluster = cluster_matches(assign["cluster_id"], prov, ref, reg.peer_min_cluster_share)
    peer_cols = ["peer_provider", "peer_campaign", "peer_match_share"]
    clusters = clusters.drop(peer_cols, strict=False).join(per_cluster, on="cluster_id", how="left")
    own = pl.DataFrame({"peer_provider": prov, "peer_campaign": ref}, schema=dict.fromkeys(peer_cols[:2], pl.String))
    assign = assign.drop(peer_cols, strict=False).hstack(own)
    record = {
        "files": [
            {"path": str(p.path), "sha256": p.sha256, "provider": p.provider, "campaigns": len(p.refs)} for p in peers
        ],
        "matched_clusters": int(clusters["peer_campaign"].is_not_null().sum()),
        "matched_prompts": int(assign["peer_campaign"].is_not_null().sum()),
        "prompts_in_matched_clusters": int(
            assign.join(per_cluster, on="cluster_id", how="left")["peer_campaign_right"].is_not_null().sum()
        ),
        "min_cluster_share": reg.peer_min_cluster_share,
        "matched_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    n = outputs.NOT_NULL
    artifacts.amend_set(
        run_dir,
        {
            artifacts.ASSIGNMENTS: lambda p: outputs.write_table(assign, p, n[artifacts.ASSIGNMENTS]),
            artifacts.CLUSTERS: lambda p: outputs.write_table(clusters, p, n[artifacts.CLUSTERS]),
        },
        lambda m: m.update({"fingerprints": record}),
        set(artifacts.KNOWN_FILES),
    )
    return record
