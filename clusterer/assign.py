"""``clusterer assign``: label new prompts with known campaigns of a registry, without re-clustering."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from . import outputs
from .config import RunConfig
from .errors import InputError
from .ingest import read_logs
from .normalise import normalise
from .registry import assign_to_known, load_registry
from .skeleton import shingle_sets

ASSIGN_SCHEMA = {"prompt_id": pl.String, "account_id": pl.String, "campaign_id": pl.String, "containment": pl.Float32}


def assign_logs(logs: Sequence[str | Path], registry: Path, out: Path, cfg: RunConfig) -> tuple[int, int]:
    """Write ``out`` (parquet: one row per input prompt, in input order, with ``campaign_id`` or null and the
    containment of the best campaign's template shingles). Returns (prompts, prompts matched).

    Raises:
        InputError: unreadable logs, or a registry with no campaigns.
    """
    reg = load_registry(registry)
    if reg.campaigns.height == 0:
        raise InputError(f"registry {registry} holds no campaigns; run `clusterer run --registry {registry}` first")
    out = Path(out)
    outputs.check_writable(out.parent if str(out.parent) else Path("."))
    prompts = read_logs(logs, cfg.ingest)
    norm = normalise(prompts.frame["text"], cfg.normalise)
    indptr, hashes = shingle_sets(norm.text, cfg.skeleton.ngram)
    ids, cont = assign_to_known(
        reg, indptr, hashes, cfg.campaign.assign_min_containment, cfg.campaign.assign_min_shingles
    )
    df = pl.DataFrame(
        {
            "prompt_id": prompts.frame["prompt_id"],
            "account_id": prompts.frame["account_id"],
            "campaign_id": pl.Series(ids, dtype=pl.String),
            "containment": pl.Series(cont, dtype=pl.Float32),
        },
        schema=ASSIGN_SCHEMA,
    )
    outputs.write_parquet(df, out)
    return df.height, int(df["campaign_id"].is_not_null().sum())
