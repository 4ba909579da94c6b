"""The run's identity and its record: ``run_id`` and the manifest (``manifest.json``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xxhash

from .. import __version__
from ..accel.backend import Backend
from ..config import RunConfig
from ..io import outputs
from ..io.ingest import NETWORK_SIGNALS, Prompts, content_digest
from ..store.registry import Registry
from .day import day_of, day_span


def device_name(backend: Backend) -> str:
    """The device a run used, in words."""
    if backend is Backend.GPU:
        try:
            import torch

            return torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001
            return "cuda"
    return f"cpu ({platform.processor() or platform.machine()})"


def run_identity(prompts: Prompts, cfg: RunConfig, backend: Backend, reg: Registry | None, history: Path | None) -> str:
    """The run ID, derived from what determines the results: the tool version, the configuration (less
    ``quiet``, the cache folder and the engine, which decides where stages run, not what they compute), the
    device backend, the content of the input rows, and the registry campaigns and history folder used, so the
    same input and config give the same ID and every table of the run can be told from another run's by it.
    Form: ``<day>-<12 hex digits>`` (``empty-…`` without timestamps)."""
    conf = cfg.to_dict()
    conf.pop("quiet", None)
    conf.pop("engine", None)
    conf["embed"].pop("cache_dir", None)
    material = {
        "version": __version__,
        "config": conf,
        "backend": str(backend),
        "rows": content_digest(prompts.frame),
        "registry": sorted(reg.campaigns["campaign_id"].to_list()) if reg is not None else None,
        "history": str(history) if history is not None else None,
    }
    digest = xxhash.xxh3_64_hexdigest(json.dumps(material, sort_keys=True, default=str).encode())[:12]
    day = day_of(prompts.frame["timestamp"])
    return f"{day.isoformat() if day else 'empty'}-{digest}"


def _rows(a: Any, status: Any, counts: dict[str, int]) -> dict[str, Any]:
    s = outputs
    return {
        "in": a.day.n,
        "out": a.tables.assignments.height,
        "clustered": counts[s.STATUS_CLUSTERED],
        "noise": counts[s.STATUS_NOISE],
        "not_clustered": {s.STATUS_EMPTY: counts[s.STATUS_EMPTY], s.STATUS_NO_TIMESTAMP: counts[s.STATUS_NO_TIMESTAMP]},
        "truncated": int(a.day.norm.truncated.sum()),
        "distinct_embedded_texts": a.vec.texts,
        "distinct_vectors": len(a.vec.emb.vectors),
        "templated": a.vec.templated,
    }


def _campaigns(a: Any) -> dict[str, Any]:
    dec, t = a.camp.decisions, a.tables
    signals = {"org_id": dec.signals.org, "account_created_at": dec.signals.account_age}
    signals.update({name: name in dec.signals.network for name in NETWORK_SIGNALS})
    return {
        "flagged_clusters": int(t.clusters["flagged"].fill_null(False).sum()),
        "flagged_prompts": int(dec.prompt_flagged.sum()),
        "flagged_accounts": int(t.accounts["flagged"].sum()),
        "operator_groups": t.operators.height,
        "signals_used": signals,
        "signals_missing": [name for name, used in signals.items() if not used],
    }


def build_manifest(a: Any, *, started: dt.datetime, argv: Sequence[str] | None, peak_rss_mb: float) -> dict[str, Any]:
    """The manifest of a computed run. ``a`` holds the run's artefacts by name (see
    :class:`clusterer.run.pipeline.Artefacts`): the day, the engine, the stages' outputs, the clock."""
    counts = {s: int((a.tables.status == s).sum()) for s in outputs.STATUSES}
    g = a.clustering.grouping
    return {
        "tool": "clusterer",
        "version": __version__,
        "run_id": a.run_id,
        "day": a.day.date.isoformat() if a.day.date else None,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "argv": list(argv) if argv is not None else sys.argv[1:],
        "device": {"requested": a.cfg.device, "backend": str(a.engine.device), "name": device_name(a.engine.device)},
        "engine": a.engine.describe(),
        "config": a.cfg.to_dict(),
        "inputs": [dataclasses.asdict(f) for f in a.day.prompts.files],
        "prompt_ids": "generated" if a.day.prompts.generated_prompt_ids else "input",
        "rows": _rows(a, a.tables.status, counts),
        "span": day_span(a.day.frame["timestamp"], a.day.date),
        "embedding": {"model_key": a.vec.model_key, "from_cache": a.vec.from_cache, "computed": a.vec.computed},
        "graph": {
            "knn_edges": a.n_knn_edges,
            "candidate_pairs": a.n_pairs,
            "skeleton_shingles": len(a.sk.hashes),
        },
        "families": {
            "fragments": g.fragments,
            "families": g.families,
            "template_joins": g.template_joins,
            "behaviour_joins": g.behaviour_joins,
            "line_joins": g.line_joins,
            "wrapper_groups": g.wrapper_groups,
            "wrapper_joined": g.wrapper_joined,
            "wrapper_rows": g.wrapper_rows,
        },
        **(
            {
                "known": {
                    "rows_attached": a.camp.known.attached,
                    "clusters_holding": len(a.camp.known.held),
                    "rows_split": a.clustering.split,
                }
            }
            if a.camp.known is not None
            else {}
        ),
        "clusters": a.tables.clusters.height,
        "campaigns": _campaigns(a),
        "accounts": a.tables.accounts.height,
        "stages": a.clock.stages,
        "peak_rss_mb": peak_rss_mb,
        "history": str(a.history) if a.history is not None else None,
        "registry": str(a.registry_dir) if a.registry_dir is not None else None,
    }
