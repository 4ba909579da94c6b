"""``clusterer assign``: label new prompts with known campaigns of a registry, without re-clustering."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .config import RunConfig


def assign_logs(logs: Sequence[str | Path], registry: Path, out: Path, cfg: RunConfig) -> tuple[int, int]:
    """Write ``out`` (parquet: one row per input prompt, in input order, with ``campaign_id`` or null and the
    containment of the best campaign's template shingles). Returns (prompts, prompts matched).

    Raises:
        InputError: unreadable logs, or a registry that is missing, damaged or holds no campaigns.
        OutputError: ``out`` cannot be written.
    """
    from .api import assign

    result = assign(logs, registry, cfg)
    result.write(out)
    return result.manifest["prompts"], result.manifest["matched"]
