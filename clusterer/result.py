"""The result of clustering one day, in memory, and how it is written as an output set."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .io import artifacts, outputs

if TYPE_CHECKING:
    from .progress import Reporter
    from .store.registry import Registry

log = logging.getLogger("clusterer")


@dataclass
class Result:
    """One day clustered: the four tables, the manifest, and what ``write`` saves beside them.

    Tables (polars DataFrames; schemas in :mod:`clusterer.outputs` and the README), each starting with
    ``run_id`` (str) and ``day`` (date):

    - ``assignments``: one row per input row, in input order: ``prompt_id``, ``account_id``, ``timestamp``,
      ``cluster_id`` (i64, -1 = not in a cluster), ``status``, ``membership``, ``template_coverage``,
      ``truncated``, ``campaign_id``, ``campaign_score``, ``flagged``, then the input's extra columns;
    - ``clusters``: one row per cluster (template family), with its campaign features and decision;
    - ``accounts``: one row per account; ``operators``: one row per operator group.

    ``cluster_id`` is meaningful within one run (``run_id``); ``campaign_id`` is content-derived, and
    stable across days when runs share a registry. ``manifest`` is the run's record (config, inputs, row
    counts, timings); :meth:`write` adds the output files with their row counts and SHA-256.
    ``vectors`` (float16, distinct vectors × d) and ``vector_of_row`` (int64 per row, -1 = not embedded)
    are the run's embeddings, saved for ``clusterer history add``.
    """

    assignments: pl.DataFrame
    clusters: pl.DataFrame
    accounts: pl.DataFrame
    operators: pl.DataFrame
    manifest: dict[str, Any]
    vectors: NDArray[np.float16] = field(repr=False)
    vector_of_row: NDArray[np.int64] = field(repr=False)
    registry_update: tuple[Path, Registry] | None = field(default=None, repr=False)
    # ``clusterer stream``: campaigns of earlier windows this window found to be one (ID → the ID it took)
    campaign_merges: dict[str, str] = field(default_factory=dict, repr=False)
    # ... and those of them found to be one by the scaffold lines their families lend each other
    campaign_line_merges: frozenset[str] = field(default_factory=frozenset, repr=False)
    reporter: Reporter | None = field(default=None, repr=False, compare=False)

    def rows_in(self, order: NDArray[np.int64]) -> Result:
        """The result with its per-row outputs (``assignments``, ``vector_of_row``) in ``order``."""
        return dataclasses.replace(self, assignments=self.assignments[order], vector_of_row=self.vector_of_row[order])

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    def write(self, out_dir: str | Path) -> dict[str, Any]:
        """Write the output set to ``out_dir`` as one unit, exactly what ``clusterer run`` writes, and save
        the updated campaign registry when the run used one. Returns the manifest written.

        Files: ``assignments.parquet``, ``clusters.parquet``, ``accounts.parquet``, ``operators.parquet``,
        ``vectors.npy``, ``vector_of_row.npy`` and ``manifest.json`` (with ``schema_version`` and each
        file's rows, bytes and SHA-256). The previous set in ``out_dir`` is replaced atomically: a crash at
        any moment leaves the previous or the new complete set. The registry is saved after the outputs, as
        a unit of its own.

        Raises:
            TypeError: ``out_dir`` is not a path.
            OutputError: ``out_dir`` holds files clusterer did not write, or cannot be written (the
            previous set, and the registry, stay as they were).
        """
        if not isinstance(out_dir, (str, Path)):
            raise TypeError(f"out_dir must be a str or Path (got {type(out_dir).__name__})")
        out = Path(out_dir)
        t0 = time.perf_counter()
        n, a = outputs.NOT_NULL, artifacts
        files = {
            a.ASSIGNMENTS: lambda p: outputs.write_table(self.assignments, p, n[a.ASSIGNMENTS]),
            a.CLUSTERS: lambda p: outputs.write_table(self.clusters, p, n[a.CLUSTERS]),
            a.ACCOUNTS: lambda p: outputs.write_table(self.accounts, p, n[a.ACCOUNTS]),
            a.OPERATORS: lambda p: outputs.write_table(self.operators, p, n[a.OPERATORS]),
            a.VECTORS: lambda p: outputs.write_npy(self.vectors, p),
            a.VECTOR_OF_ROW: lambda p: outputs.write_npy(self.vector_of_row, p),
        }

        def stamp(manifest: dict[str, Any]) -> None:
            from .progress import peak_rss_mb

            secs = time.perf_counter() - t0
            manifest["stages"]["write"] = {"seconds": round(secs, 3), "peak_rss_mb": peak_rss_mb()}
            manifest["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat()

        artifacts.replace_set(out, files, self.manifest, set(artifacts.KNOWN_FILES), "--out", before_manifest=stamp)
        log.info("wrote %s (run %s)", out, self.run_id, extra={"out": str(out), "run_id": self.run_id})
        if self.registry_update is not None:
            from .store.registry import save_registry

            path, reg = self.registry_update
            save_registry(path, reg, (self.manifest.get("embedding") or {}).get("model_key"))
            log.info("updated registry %s (%d campaigns)", path, reg.campaigns.height)
        return self.manifest
