"""compute(prompts, cfg) -> Result: the stages in order, with progress, timings and memory; nothing else.

Reading and validating the input, the registry and the output directory happen before this module is
imported (``clusterer.api``), so bad input is refused without loading the heavy libraries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import xxhash

from .. import __version__
from ..accel import fastops
from ..accel.backend import Backend, Device, resolve
from ..campaigns.decisions import decide
from ..clustering.families import group_fragments
from ..clustering.hdbscan import (
    attach_by_template,
    attach_noise,
    centroids,
    cluster_edges,
    core_share,
    propagate_labels,
)
from ..config import RunConfig
from ..graph.knn import knn_graph, knn_pairs, lsh_pairs, merge_pairs, score_edges
from ..graph.lsh import pair_overlap, signatures
from ..io import outputs
from ..io.ingest import Prompts, content_digest
from ..progress import Reporter, peak_rss_mb
from ..result import Result
from ..store.history import annotate_clusters
from ..store.registry import Family, Registry, check_dim, match_families, update_registry
from ..text.normalise import normalise, text_keys, unspace
from ..text.skeleton import build_skeletons
from ..text.templates import describe_templates
from ..vectors.encoders import RowVectors, distinct_rows, embed_texts, load_encoder


def _device_name(backend: Backend) -> str:
    if backend is Backend.GPU:
        try:
            import torch

            return torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001
            return "cuda"
    return f"cpu ({platform.processor() or platform.machine()})"


def day_of(timestamps: pl.Series) -> dt.date | None:
    """The day a log covers: the UTC date of its median timestamp (None without timestamps)."""
    ts = timestamps.drop_nulls().sort()
    return ts[len(ts) // 2].date() if len(ts) else None


def run_identity(
    prompts: Prompts, cfg: RunConfig, backend: Backend, reg: Registry | None, history: Path | None
) -> tuple[str, dt.date | None]:
    """``(run_id, day)``. The run ID is derived from what determines the results: the tool version, the
    configuration (less ``quiet`` and the cache folder), the device backend, the content of the input rows,
    and the registry campaigns and history folder used, so the same input and config give the same ID and
    every table of the run can be told from another run's by it. Form: ``<day>-<12 hex digits>``."""
    conf = cfg.to_dict()
    conf.pop("quiet", None)
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
    return f"{day.isoformat() if day else 'empty'}-{digest}", day


def compute(
    prompts: Prompts,
    cfg: RunConfig,
    *,
    reporter: Reporter | None = None,
    registry: Registry | None = None,
    registry_dir: Path | None = None,
    history: Path | None = None,
    argv: Sequence[str] | None = None,
) -> Result:
    """Cluster one validated day of prompts; nothing is written (see :meth:`Result.write`).

    With ``registry`` (loaded from ``registry_dir``), flagged families are matched to known campaigns (stable
    IDs across days); the updated registry is kept in the result and saved by :meth:`Result.write`. With
    ``history`` (a folder made by ``clusterer history add``), each cluster is annotated with its
    near-duplicates on earlier days.

    Raises:
        ConfigError, BackendUnavailable: problems the user can fix.
    """
    reporter = reporter or Reporter(quiet=cfg.quiet)
    clock = reporter
    started = dt.datetime.now(dt.timezone.utc)
    backend = resolve(Device(cfg.device))
    reg = registry
    np.random.seed(cfg.seed)
    run_id, day = run_identity(prompts, cfg, backend, reg, history)
    frame = prompts.frame
    n = frame.height

    with clock.stage("normalise"):
        norm = normalise(frame["text"], cfg.normalise)
        no_time = frame["timestamp"].is_null().to_numpy()  # only with ingest.null_timestamps = "skip"
        rows = np.flatnonzero(~norm.empty & ~no_time)  # rows that are embedded and clustered
        texts = norm.text.gather(rows)

    with clock.stage("skeleton"):
        sk = build_skeletons(texts, cfg.skeleton)
        # embed the scaffold view of templated prompts (payload masked), the text itself otherwise
        templated = sk.coverage >= cfg.skeleton.view_min_coverage
        to_embed = pl.select(pl.when(pl.Series(templated)).then(sk.view).otherwise(texts)).to_series()
        to_embed = unspace(to_embed)  # the encoder reads CJK / Thai as written; only shingles need the spaces
        tkeys = text_keys(to_embed)
        keys, first, inverse = fastops.unique_first_inverse(tkeys)
        uniq_texts = to_embed.gather(first).to_list()

    with clock.stage("embed", total=len(uniq_texts)) as advance:
        encoder = load_encoder(cfg.embed, backend)
        if reg is not None and registry_dir is not None:  # a model path's dimension is known only now
            check_dim(reg, registry_dir, encoder.dim, cfg.embed.model)
        emb = embed_texts(uniq_texts, keys, encoder, cfg.embed.resolved_cache_dir(), progress=advance)
        # distinct texts can share a vector (equal opening tokens): index each vector once
        vectors, of_vec = distinct_rows(emb.emb)
        of_row = of_vec[inverse.ravel()]
        emb_rows = RowVectors(vectors, of_row)

    with clock.stage("knn"):
        knn = knn_graph(vectors, cfg.graph, backend, of_row=of_row)

    with clock.stage("signatures"):
        sigs = signatures(sk, cfg.skeleton, cfg.seed, backend)

    with clock.stage("candidates"):
        pairs = merge_pairs(knn_pairs(knn), lsh_pairs(sigs.sig, sigs.sizes, cfg.graph), n=len(rows))

    with clock.stage("overlap"):
        ov = pair_overlap(sigs, pairs.i, pairs.j, backend)
        edges = score_edges(pairs, emb_rows, ov[:, 0], cfg.graph)
        n_pairs = len(pairs.i)
        del ov, pairs

    with clock.stage("cluster"):
        dist = np.sqrt(np.clip(2.0 - 2.0 * edges.sim.astype(np.float64), 0.0, 4.0))
        clusters = cluster_edges(len(rows), edges.i, edges.j, dist, cfg.cluster)
        acc_codes = fastops.unique_inverse(frame["account_id"].gather(rows).to_numpy())[1]
        c = cfg.cluster
        attached = attach_noise(clusters.labels, edges.i, edges.j, edges.sim, c.attach_min_sim)
        attached = propagate_labels(
            attached, edges.i, edges.j, edges.sim, c.grow_min_sim, c.grow_min_votes, c.grow_min_share, c.grow_rounds
        )
        attached = attach_by_template(attached, sk.indptr, sk.hashes, c.attach_template, c.attach_template_shingles)
        fit = np.zeros(n, np.float32)  # per prompt: share of its fragment's scaffold it carries
        fit[rows] = core_share(attached, sk.indptr, sk.hashes, c.attach_template_shingles)
        frame_orgs = _orgs_filled(frame, cfg.campaign.org_col)
        org_codes = None
        if frame_orgs is not None:
            org = frame_orgs[cfg.campaign.org_col].gather(rows)
            org_codes = np.where(org.is_null().to_numpy(), -1, fastops.unique_inverse(org.fill_null("").to_numpy())[1])
            org_codes = org_codes.astype(np.int64)
        grouping = group_fragments(
            attached,
            acc_codes,
            emb_rows,
            texts,
            sk,
            cfg.cluster,
            cfg.skeleton.ngram,
            cfg.embed.encoder_languages(),
            orgs=org_codes,
            times=frame["timestamp"].gather(rows).dt.epoch("s").fill_null(0).to_numpy(),
        )
        fam = grouping.labels
        labels = np.full(n, -1, np.int64)
        labels[rows] = fam
        membership = np.zeros(n, np.float32)
        membership[rows] = np.where(clusters.labels >= 0, clusters.probability, 0.0)
        coverage = np.zeros(n, np.float32)
        coverage[rows] = sk.coverage
        status = np.full(n, outputs.STATUS_EMPTY, dtype=object)
        status[no_time] = outputs.STATUS_NO_TIMESTAMP
        status[rows] = np.where(fam >= 0, outputs.STATUS_CLUSTERED, outputs.STATUS_NOISE)

    with clock.stage("templates"):
        tmpl = describe_templates(fam, texts, sk, sigs, cfg.skeleton, cfg.seed)

    with clock.stage("campaigns"):
        cl_info = pl.DataFrame(
            {
                "cluster_id": np.arange(len(tmpl.text), dtype=np.int64),
                "rigidity": tmpl.rigidity,
                "template_coverage": tmpl.coverage,
                "template_fit": tmpl.fit,
                "template": pl.Series(tmpl.text, dtype=pl.String),
            }
        )
        centroid = centroids(fam, emb_rows, len(tmpl.text))
        families: dict[int, Family] = {}

        def namer(cids: list[int], proposed: list[str]) -> dict[int, str]:
            for c, p in zip(cids, proposed, strict=True):
                families[c] = Family(c, p, centroid[c], tmpl.frequent[c], tmpl.common[c], tmpl.text[c], 0, 0, 0.0)
            return match_families(reg, list(families.values()), cfg.campaign) if reg is not None else {}

        dec_frame = frame_orgs if frame_orgs is not None else frame
        dec = decide(dec_frame, labels, norm.key, cl_info, tmpl.key, cfg.campaign, namer=namer, fit=fit)

    with clock.stage("tables"):
        run = {"run_id": run_id, "day": day}
        assign = outputs.assignments_frame(
            frame, labels, status, membership, coverage, norm.truncated, dec, prompts.extra_columns, **run
        )
        cl = outputs.clusters_frame(frame, labels, emb_rows, rows, tmpl, dec, **run)
        if history is not None:
            hist = annotate_clusters(history, emb.model_key, vectors, of_row, fam, cl.height)
            cl = cl.join(hist, on="cluster_id", how="left")
        vector_of_row = np.full(n, -1, np.int64)
        vector_of_row[rows] = of_row
        acc = outputs.accounts_frame(frame, labels, dec, **run)
        ops = outputs.operators_frame(dec, **run)
        reg_update = None
        if reg is not None and registry_dir is not None:
            flagged = dec.clusters.filter(pl.col("flagged"))
            fams = [
                dataclasses.replace(families[c], prompts=int(p), accounts=int(a), score=float(s))
                for c, p, a, s in zip(
                    flagged["cluster_id"],
                    flagged["prompts"],
                    flagged["accounts"],
                    flagged["campaign_score"],
                    strict=True,
                )
            ]
            ids = dict(zip(flagged["cluster_id"].to_list(), flagged["campaign_id"].to_list(), strict=True))
            reg_update = (Path(registry_dir), update_registry(reg, fams, ids, day or started.date()))

    counts = {s: int((status == s).sum()) for s in outputs.STATUSES}
    manifest: dict[str, Any] = {
        "tool": "clusterer",
        "version": __version__,
        "run_id": run_id,
        "day": day.isoformat() if day else None,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "argv": list(argv) if argv is not None else sys.argv[1:],
        "device": {"requested": cfg.device, "backend": str(backend), "name": _device_name(backend)},
        "config": cfg.to_dict(),
        "inputs": [dataclasses.asdict(f) for f in prompts.files],
        "prompt_ids": "generated" if prompts.generated_prompt_ids else "input",
        "rows": {
            "in": n,
            "out": assign.height,
            "clustered": counts[outputs.STATUS_CLUSTERED],
            "noise": counts[outputs.STATUS_NOISE],
            "not_clustered": {
                outputs.STATUS_EMPTY: counts[outputs.STATUS_EMPTY],
                outputs.STATUS_NO_TIMESTAMP: counts[outputs.STATUS_NO_TIMESTAMP],
            },
            "truncated": int(norm.truncated.sum()),
            "distinct_embedded_texts": len(uniq_texts),
            "distinct_vectors": len(vectors),
            "templated": int(templated.sum()),
        },
        "embedding": {"model_key": emb.model_key, "from_cache": emb.from_cache, "computed": emb.computed},
        "graph": {"knn_edges": int(knn.idx.size), "candidate_pairs": n_pairs, "skeleton_shingles": len(sk.hashes)},
        "families": {
            "fragments": grouping.fragments,
            "families": grouping.families,
            "template_joins": grouping.template_joins,
            "behaviour_joins": grouping.behaviour_joins,
        },
        "clusters": cl.height,
        "campaigns": {
            "flagged_clusters": int(cl["flagged"].fill_null(False).sum()),
            "flagged_prompts": int(dec.prompt_flagged.sum()),
            "flagged_accounts": int(acc["flagged"].sum()),
            "operator_groups": ops.height,
            "signals_used": {"org_id": dec.signals.org, "account_created_at": dec.signals.account_age},
            "signals_missing": [
                name
                for name, used in (("org_id", dec.signals.org), ("account_created_at", dec.signals.account_age))
                if not used
            ],
        },
        "accounts": acc.height,
        "stages": clock.stages,
        "peak_rss_mb": peak_rss_mb(),
        "history": str(history) if history is not None else None,
        "registry": str(registry_dir) if registry_dir is not None else None,
    }
    return Result(
        assignments=assign,
        clusters=cl,
        accounts=acc,
        operators=ops,
        manifest=manifest,
        vectors=vectors.astype(np.float16),
        vector_of_row=vector_of_row,
        registry_update=reg_update,
        reporter=reporter,
    )


def _orgs_filled(frame: pl.DataFrame, org_col: str) -> pl.DataFrame | None:
    """The prompt frame with null organisation IDs replaced by one organisation per account (an account with
    no organisation is its own), or None without an organisation column. A column that is null throughout
    stays so (the signal is then missing). A null used to wrap to 2^32 - 1 as a code and sized arrays by it.
    """
    if org_col not in frame.columns:
        return None
    org = frame[org_col].cast(pl.String, strict=False)
    if 0 < org.null_count() < len(org):
        org = pl.select(pl.coalesce(org, pl.lit("\x00account:") + frame["account_id"])).to_series()
    return frame.with_columns(org.alias(org_col))


def run(
    logs: Sequence[str | Path],
    out: Path,
    cfg: RunConfig,
    registry: Path | None = None,
    history: Path | None = None,
) -> dict[str, Any]:
    """``clusterer run``: cluster ``logs`` and write the output set to ``out``; returns the manifest written.

    Raises:
        InputError, ConfigError, BackendUnavailable, OutputError: problems the user can fix.
    """
    from ..api import check_out, cluster

    check_out(out, logs, registry, history)
    return cluster(logs, cfg, registry=registry, history=history).write(out)
