"""run(logs, out, cfg): the stages in order, with progress, timings and memory; nothing else."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import platform
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__, fastops, outputs
from .backend import Backend, Device, resolve
from .campaigns import decide
from .cluster import attach_by_template, attach_noise, centroids, cluster_edges, core_share, propagate_labels
from .config import RunConfig
from .embed import RowVectors, distinct_rows, embed_texts, load_encoder
from .families import group_fragments
from .graph import knn_graph, knn_pairs, lsh_pairs, merge_pairs, score_edges
from .history import VECTOR_OF_ROW, VECTORS, annotate_clusters
from .ingest import read_logs
from .normalise import normalise, text_keys
from .overlap import pair_overlap, signatures
from .registry import Family, load_registry, match_families, save_registry, update_registry
from .skeleton import build_skeletons
from .templates import describe_templates


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


@dataclass
class StageClock:
    """Seconds and peak RSS (MiB, process-wide high-water mark at stage end) per stage."""

    console: Console
    quiet: bool
    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        secs = time.perf_counter() - t0
        self.stages[name] = {"seconds": round(secs, 3), "peak_rss_mb": _peak_rss_mb()}
        if not self.quiet:
            self.console.log(f"{name}: {secs:.1f}s, peak RSS {self.stages[name]['peak_rss_mb']:.0f} MiB")


def _device_name(backend: Backend) -> str:
    if backend is Backend.GPU:
        try:
            import torch

            return torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001
            return "cuda"
    return f"cpu ({platform.processor() or platform.machine()})"


def run(
    logs: Sequence[str | Path],
    out: Path,
    cfg: RunConfig,
    console: Console | None = None,
    registry: Path | None = None,
    history: Path | None = None,
) -> dict[str, Any]:
    """Cluster one day of prompt logs into ``out``; returns the manifest that was written.

    With ``registry``, flagged families are matched to known campaigns there (stable IDs across days) and
    the registry is updated after the outputs are written. With ``history`` (a folder made by
    ``clusterer history add``), each cluster is annotated with its near-duplicates on earlier days.

    Raises:
        InputError, ConfigError, BackendUnavailable, OutputError: problems the user can fix.
    """
    console = console or Console(stderr=True, quiet=cfg.quiet)
    started = dt.datetime.now(dt.timezone.utc)
    clock = StageClock(console, cfg.quiet)
    out = Path(out)
    backend = resolve(Device(cfg.device))
    outputs.check_writable(out)
    reg = load_registry(registry) if registry is not None else None
    np.random.seed(cfg.seed)

    with clock.stage("ingest"):
        prompts = read_logs(logs, cfg.ingest)
    frame = prompts.frame
    n = frame.height

    with clock.stage("normalise"):
        norm = normalise(frame["text"], cfg.normalise)
        rows = np.flatnonzero(~norm.empty)  # rows that are embedded and clustered
        texts = norm.text.gather(rows)

    with clock.stage("skeleton"):
        sk = build_skeletons(texts, cfg.skeleton)
        # embed the scaffold view of templated prompts (payload masked), the text itself otherwise
        templated = sk.coverage >= cfg.skeleton.view_min_coverage
        to_embed = pl.select(pl.when(pl.Series(templated)).then(sk.view).otherwise(texts)).to_series()
        tkeys = text_keys(to_embed)
        keys, first, inverse = fastops.unique_first_inverse(tkeys)
        uniq_texts = to_embed.gather(first).to_list()

    with clock.stage("embed"):
        encoder = load_encoder(cfg.embed, backend)
        with Progress(
            TextColumn("embed"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=cfg.quiet,
            transient=True,
        ) as bar:
            task = bar.add_task("embed", total=len(uniq_texts))
            emb = embed_texts(
                uniq_texts, keys, encoder, cfg.embed.resolved_cache_dir(), progress=lambda k: bar.advance(task, k)
            )
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
        org_col = cfg.campaign.org_col
        org_codes = None
        if org_col in frame.columns:
            org = frame[org_col].gather(rows).cast(pl.String)
            org_codes = np.where(org.is_null().to_numpy(), -1, org.fill_null("").cast(pl.Categorical).to_physical())
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

        dec = decide(frame, labels, norm.key, cl_info, tmpl.key, cfg.campaign, namer=namer, fit=fit)

    with clock.stage("write"):
        assign = outputs.assignments_frame(
            frame, labels, status, membership, coverage, norm.truncated, dec, prompts.extra_columns
        )
        cl = outputs.clusters_frame(frame, labels, emb_rows, rows, tmpl, dec)
        if history is not None:
            hist = annotate_clusters(history, emb.model_key, vectors, of_row, fam, cl.height)
            cl = cl.join(hist, on="cluster_id", how="left")
        vector_of_row = np.full(n, -1, np.int64)
        vector_of_row[rows] = of_row
        outputs.write_npy(vectors.astype(np.float16), out / VECTORS)
        outputs.write_npy(vector_of_row, out / VECTOR_OF_ROW)
        acc = outputs.accounts_frame(frame, labels, dec)
        ops = outputs.operators_frame(dec)
        outputs.write_parquet(assign, out / outputs.ASSIGNMENTS)
        outputs.write_parquet(cl, out / outputs.CLUSTERS)
        outputs.write_parquet(acc, out / outputs.ACCOUNTS)
        outputs.write_parquet(ops, out / outputs.OPERATORS)
        if reg is not None:
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
            day = frame["timestamp"].drop_nulls().sort()
            day = day[len(day) // 2].date() if len(day) else started.date()
            save_registry(registry, update_registry(reg, fams, ids, day))

    counts = {
        s: int((status == s).sum()) for s in (outputs.STATUS_CLUSTERED, outputs.STATUS_NOISE, outputs.STATUS_EMPTY)
    }
    manifest: dict[str, Any] = {
        "tool": "clusterer",
        "version": __version__,
        "started_at": started.isoformat(),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "argv": sys.argv[1:],
        "device": {"requested": cfg.device, "backend": str(backend), "name": _device_name(backend)},
        "config": cfg.to_dict(),
        "inputs": [dataclasses.asdict(f) for f in prompts.files],
        "prompt_ids": "generated" if prompts.generated_prompt_ids else "input",
        "rows": {
            "in": n,
            "out": assign.height,
            "clustered": counts[outputs.STATUS_CLUSTERED],
            "noise": counts[outputs.STATUS_NOISE],
            "not_clustered": {outputs.STATUS_EMPTY: counts[outputs.STATUS_EMPTY]},
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
        "peak_rss_mb": _peak_rss_mb(),
        "history": str(history) if history is not None else None,
        "outputs": [
            outputs.ASSIGNMENTS,
            outputs.CLUSTERS,
            outputs.ACCOUNTS,
            outputs.OPERATORS,
            VECTORS,
            VECTOR_OF_ROW,
            outputs.MANIFEST,
        ],
    }
    outputs.write_json(manifest, out / outputs.MANIFEST)
    if not cfg.quiet:
        from .report import summary_table

        console.print(summary_table(manifest, cl))
    return manifest
