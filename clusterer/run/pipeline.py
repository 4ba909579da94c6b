"""compute(prompts, cfg) -> Result: the stages in order, each timed and reported; nothing else.

Input, registry and output directory are checked before this module is imported (``clusterer.api``), so
bad input is refused without loading the heavy libraries. What each stage computes: :mod:`.stages`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..accel.backend import Device, resolve
from ..config import RunConfig
from ..io.ingest import Prompts
from ..progress import Reporter, peak_rss_mb
from ..result import Result
from ..store.registry import Registry
from . import stages as st
from .engine import LocalEngine
from .engines import make_engine
from .manifest import build_manifest, run_identity
from .stages import Artefacts


def compute(
    prompts: Prompts,
    cfg: RunConfig,
    *,
    reporter: Reporter | None = None,
    registry: Registry | None = None,
    registry_dir: Path | None = None,
    history: Path | None = None,
    argv: Sequence[str] | None = None,
    engine: LocalEngine | None = None,
    carried: st.Carried | None = None,
) -> Result:
    """Cluster one validated day of prompts; nothing is written (see :meth:`Result.write`).

    With ``registry`` (loaded from ``registry_dir``), flagged families are matched to known campaigns (stable
    IDs across days); the updated registry is kept in the result and saved by :meth:`Result.write`. With
    ``history`` (a folder made by ``clusterer history add``), each cluster is annotated with its near-duplicates
    on earlier days. ``carried`` (``clusterer stream``): what earlier windows of the day learned
    (:class:`~clusterer.run.stages.Carried`). ``engine``: where the stages run (default: ``cfg.engine``, closed after).

    Raises:
        ConfigError, BackendUnavailable: problems the user can fix.
    """
    clock, started = reporter or Reporter(quiet=cfg.quiet), dt.datetime.now(dt.timezone.utc)
    device = resolve(Device(cfg.device))
    np.random.seed(cfg.seed)
    eng = engine or make_engine(cfg, device)
    a = Artefacts(cfg, clock, eng, run_identity(prompts, cfg, device, registry, history), history, registry_dir)
    reg = (registry, registry_dir) if registry is not None and registry_dir is not None else None
    try:
        with clock.stage("normalise"):
            a.day = st.normalise_stage(prompts, cfg, eng, carried)
        with clock.stage("skeleton"):
            a.sk, todo = st.skeleton_stage(a.day, cfg, eng)
        with clock.stage("embed", total=len(todo.texts)) as advance:
            a.vec, todo = st.embed_stage(a.day, cfg, eng, todo, reg, advance), None  # its texts are not kept
        with clock.stage("knn"):
            knn = st.knn_stage(a.day, cfg, eng, a.vec)
        with clock.stage("signatures"):
            a.sigs = st.signatures_stage(a.day, cfg, eng, a.sk)
        with clock.stage("candidates"):
            pairs, a.n_knn_edges = st.candidates_stage(a.day, cfg, eng, knn, a.sigs), int(knn.idx.size)
            del knn
        with clock.stage("overlap"):
            edges, a.n_pairs = st.overlap_stage(a.day, cfg, eng, pairs, a.sigs, a.vec), len(pairs.i)
            del pairs
        with clock.stage("cluster"):
            a.clustering = st.cluster_stage(a.day, cfg, eng, edges, a.sk, a.vec, registry, carried)
        with clock.stage("templates"):
            a.tmpl = st.templates_stage(a.day, cfg, eng, a.clustering, a.sk, a.sigs)
        with clock.stage("campaigns"):
            a.clustering, a.tmpl, a.camp = st.decisions_stage(a, cfg, eng, registry, carried)
        with clock.stage("tables"):
            a.tables = st.tables_stage(a.day, cfg, eng, a.run_id, a.clustering, a.sk, a.tmpl, a.camp, a.vec, history)
    finally:
        if engine is None:
            eng.close()
    naming, t, update = a.camp.naming, a.tables, None
    if naming is not None and registry_dir is not None:
        update = (registry_dir, naming.updated(a.camp.decisions.clusters, a.day.date or started.date()))
    return Result(
        assignments=t.assignments,
        clusters=t.clusters,
        accounts=t.accounts,
        operators=t.operators,
        manifest=build_manifest(a, started=started, argv=argv, peak_rss_mb=peak_rss_mb()),
        vectors=a.vec.emb.vectors.astype(np.float16),
        vector_of_row=t.vector_of_row,
        registry_update=update,
        campaign_merges=dict(getattr(naming, "merges", {})),
        campaign_line_merges=getattr(naming, "line_merged", frozenset()),
        reporter=clock,
    )
