"""The whole pipeline beside two peers, on the same generated days and the same cached embeddings.

    python bench/bench_pipeline.py [--sizes 10000 100000] [--model default|static] [--pools DIR]
                                   [--peers minhash bertopic tfidf] [--score PATH/TO/score.py] [--work DIR]
                                   [--days DAY_DIR ...]  (labelled days instead of generated sizes)

For each size a labelled day is generated (``scripts/gen_scenario.py``: this project's own template
families, legitimate templated customers, shared prompts, trending topics, background prompts from the
bundled sample or ``--pools``). Then, each method in a subprocess of its own so that peak RSS is its own:

  ours      ``clusterer run`` twice: the first run fills the embedding cache (its embed stage is the shared
            embedding time, quoted separately), the second is timed; "seconds" = all stages but embed.
  minhash   MinHash-LSH near-duplicate grouping with datasketch: 128-permutation MinHash of each prompt's
            word 3-gram shingles (the same shingles as ours), ``MinHashLSH(threshold=0.5)``, connected
            components of the query results; singletons are noise.
  tfidf     the textbook baseline: TF-IDF (word 1-2-grams + char 3-5-grams, sublinear) -> SVD(100) -> unit
            rows -> HDBSCAN(min_cluster_size 20); slow on 2 cores at 100k (HDBSCAN in 100 dimensions: hours).
  tfidf-graph  the same features and HDBSCAN settings over the exact 64-NN graph of the SVD rows (the MST
            restricted to kNN edges): the baseline in minutes.
  bertopic  the BERTopic recipe without its topic-word step: UMAP (n_neighbors 15, 5 components,
            min_dist 0, cosine) then HDBSCAN (min_cluster_size 10, eom) over the embeddings our run used
            (``vectors.npy``): same vectors, no embedding time.

Quality is computed here on the labels (mean best-cluster F1 over campaigns, ARI over campaign prompts
with noise as singletons, benign contamination, as ``score.py`` defines them) and, with ``--score``, by
that scorer too (its output is printed). Prints one JSON line per method and size, then a table of
ratios ours / theirs for time and memory.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gen(n: int, out: Path, pools: Path | None, hard: bool) -> None:
    if (out / "traffic.parquet").is_file():
        return
    spec = importlib.util.spec_from_file_location("gen_scenario", ROOT / "scripts" / "gen_scenario.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    df, meta = mod.generate(n, 1, 7, hard, pools)
    out.mkdir(parents=True, exist_ok=True)
    df.drop("label", "kind", "group").write_parquet(out / "traffic.parquet")
    df.select("prompt_id", "label", "kind", "account_id", "group").write_parquet(out / "labels.parquet")
    (out / "meta.json").write_text(json.dumps(meta, indent=2))


# ---------------------------------------------------------------- quality (score.py's definitions)


def quality(labels: pl.DataFrame, pred: pl.DataFrame) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score

    df = labels.join(pred.select("prompt_id", "cluster_id"), on="prompt_id", how="left").with_columns(
        pl.col("cluster_id").fill_null(-1)
    )
    camp = df.filter(pl.col("kind") == "campaign")
    f1s = []
    for lab in camp["label"].unique().sort().to_list():
        mine = df.filter(pl.col("label") == lab)
        best = 0.0
        for cid, cnt in mine.filter(pl.col("cluster_id") >= 0)["cluster_id"].value_counts().iter_rows():
            size = int((df["cluster_id"] == cid).sum())
            p, r = cnt / size, cnt / mine.height
            best = max(best, 2 * p * r / (p + r))
        f1s.append(best)
    # noise as singletons for ARI
    cid = camp["cluster_id"].to_numpy().copy()
    noise = cid < 0
    cid[noise] = -np.arange(1, int(noise.sum()) + 1)
    ari = adjusted_rand_score(camp["label"].to_list(), cid)
    # benign contamination: non-campaign prompts inside campaign-majority clusters
    clustered = df.filter(pl.col("cluster_id") >= 0)
    maj = clustered.group_by("cluster_id").agg(
        (pl.col("kind") == "campaign").mean().alias("camp_share"), pl.len().alias("n")
    )
    camp_cl = maj.filter(pl.col("camp_share") > 0.5)["cluster_id"]
    non = df.filter(pl.col("kind") != "campaign")
    contam = float(non["cluster_id"].is_in(camp_cl.implode()).mean()) if non.height else 0.0
    return {
        "mean_best_cluster_f1": round(float(np.mean(f1s)) if f1s else 0.0, 4),
        "ari_campaign_prompts": round(float(ari), 4),
        "benign_contamination": round(contam, 4),
        "n_clusters": int(clustered["cluster_id"].n_unique()),
    }


# ---------------------------------------------------------------- workers (one process each)


def worker_ours(day: Path, out: Path, model: str, cache: Path) -> dict:
    from clusterer import api
    from clusterer.config import load_config

    cfg = load_config(None, quiet=True, **{"embed.model": model, "embed.cache_dir": str(cache)})
    m = api.run([day / "traffic.parquet"], out, cfg)
    stages = {k: v["seconds"] for k, v in m["stages"].items()}
    return {
        "seconds": round(sum(v for k, v in stages.items() if k != "embed"), 2),
        "embed_seconds": stages["embed"],
        "embedded_computed": m["embedding"]["computed"],
        "stages": stages,
        "peak_rss_mb": round(_peak_mb(), 1),
    }


def _texts(day: Path) -> tuple[pl.DataFrame, list[str]]:
    from clusterer.config import NormaliseConfig
    from clusterer.text.normalise import normalise

    frame = pl.read_parquet(day / "traffic.parquet", columns=["prompt_id", "text"])
    return frame, normalise(frame["text"], NormaliseConfig()).text.to_list()


def worker_minhash(day: Path, out: Path) -> dict:
    from datasketch import MinHash, MinHashLSH
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    frame, texts = _texts(day)
    t0 = time.perf_counter()
    shingles = []
    for t in texts:
        w = t.split()
        sh = {" ".join(w[i : i + 3]).encode() for i in range(max(len(w) - 2, 1))} if w else set()
        shingles.append(list(sh))
    hashes = MinHash.bulk(shingles, num_perm=128)
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    with lsh.insertion_session() as sess:
        for r, h in enumerate(hashes):
            if shingles[r]:
                sess.insert(r, h, check_duplication=False)
    a, b = [], []
    for r, h in enumerate(hashes):
        if shingles[r]:
            for o in lsh.query(h):
                if o != r:
                    a.append(r)
                    b.append(o)
    n = len(texts)
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    size = np.bincount(comp)
    cid = np.where(size[comp] >= 2, comp, -1)
    secs = time.perf_counter() - t0
    pl.DataFrame({"prompt_id": frame["prompt_id"], "cluster_id": cid}).write_parquet(out)
    return {"seconds": round(secs, 2), "peak_rss_mb": round(_peak_mb(), 1), "pairs": len(a)}


def worker_bertopic(day: Path, out: Path, ours_dir: Path) -> dict:
    import hdbscan
    import umap

    frame = pl.read_parquet(day / "traffic.parquet", columns=["prompt_id"])
    vecs = np.load(ours_dir / "vectors.npy").astype(np.float32)
    of_row = np.load(ours_dir / "vector_of_row.npy")
    rows = np.flatnonzero(of_row >= 0)
    emb = vecs[of_row[rows]]
    t0 = time.perf_counter()
    red = umap.UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=42, low_memory=True)
    low = red.fit_transform(emb)
    lab = hdbscan.HDBSCAN(min_cluster_size=10, metric="euclidean", cluster_selection_method="eom").fit_predict(low)
    secs = time.perf_counter() - t0
    cid = np.full(len(of_row), -1, np.int64)
    cid[rows] = lab
    pl.DataFrame({"prompt_id": frame["prompt_id"], "cluster_id": cid}).write_parquet(out)
    return {"seconds": round(secs, 2), "peak_rss_mb": round(_peak_mb(), 1)}


TFIDF_GRAPH_K = 64  # neighbours per row for the tfidf-graph peer (min_samples 20 needs well above 20)


def worker_tfidf(day: Path, out: Path, graph: bool = False) -> dict:
    """The textbook baseline: TF-IDF (word 1-2-grams + char 3-5-grams) -> SVD(100) -> HDBSCAN(20).

    ``graph``: the same HDBSCAN (min_cluster_size = min_samples = 20, eom, no epsilon) over the exact
    64-nearest-neighbour graph of the SVD rows instead of all pairs (the mutual-reachability MST restricted
    to kNN edges, this project's own HDBSCAN path): minutes instead of hours in 100 dimensions on 2 cores."""
    from scipy.sparse import hstack
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    frame, texts = _texts(day)
    t0 = time.perf_counter()
    rows = [r for r, t in enumerate(texts) if t]
    docs = [texts[r] for r in rows]
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=200_000, sublinear_tf=True, dtype=np.float32)
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_features=200_000, sublinear_tf=True, dtype=np.float32
    )
    x = hstack([word.fit_transform(docs), char.fit_transform(docs)]).tocsr()
    low = normalize(TruncatedSVD(100, random_state=0).fit_transform(x))
    if graph:
        import faiss

        from clusterer.clustering.hdbscan import cluster_edges
        from clusterer.config import ClusterConfig
        from clusterer.graph.edges import distance, pair_cosine, unique_pairs

        vec = np.ascontiguousarray(low, dtype=np.float32)
        index = faiss.IndexFlatIP(vec.shape[1])
        index.add(vec)
        _, idx = index.search(vec, TFIDF_GRAPH_K + 1)  # the row itself comes first
        pairs = unique_pairs(np.repeat(np.arange(len(vec), dtype=np.int64), TFIDF_GRAPH_K + 1), idx.ravel(), len(vec))
        d = distance(pair_cosine(vec, pairs.i, pairs.j))  # Euclidean on unit rows
        cfg = ClusterConfig(min_cluster_size=20, min_samples=20, epsilon=0.0)
        lab = cluster_edges(len(vec), pairs.i, pairs.j, d, cfg).labels
    else:
        import hdbscan

        lab = hdbscan.HDBSCAN(min_cluster_size=20, core_dist_n_jobs=1).fit_predict(low)
    secs = time.perf_counter() - t0
    cid = np.full(len(texts), -1, np.int64)
    cid[rows] = lab
    pl.DataFrame({"prompt_id": frame["prompt_id"], "cluster_id": cid}).write_parquet(out)
    return {"seconds": round(secs, 2), "peak_rss_mb": round(_peak_mb(), 1)}


def _worker_main(argv: list[str]) -> None:
    method, day, out = argv[0], Path(argv[1]), Path(argv[2])
    if method == "ours":
        res = worker_ours(day, out, argv[3], Path(argv[4]))
    elif method == "minhash":
        res = worker_minhash(day, out)
    elif method in ("tfidf", "tfidf-graph"):
        res = worker_tfidf(day, out, graph=method == "tfidf-graph")
    else:
        res = worker_bertopic(day, out, Path(argv[3]))
    print("RESULT " + json.dumps(res), flush=True)


def _spawn(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, env={**os.environ}
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker {args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--model", default="default", help="embedding model for ours (and so the shared vectors)")
    ap.add_argument("--pools", type=Path, default=None, help="prompt pools for the generator (default: bundled)")
    ap.add_argument("--hard", action="store_true", help="generate hard days")
    ap.add_argument(
        "--peers", nargs="*", default=["minhash", "bertopic"], choices=["minhash", "bertopic", "tfidf", "tfidf-graph"]
    )
    ap.add_argument(
        "--days",
        type=Path,
        nargs="*",
        default=[],
        help="existing labelled day folders (traffic.parquet + labels.parquet) to run instead of generated sizes",
    )
    ap.add_argument("--score", type=Path, default=None, help="path to the evaluation's score.py (optional)")
    ap.add_argument("--work", type=Path, default=Path("bench_out/pipeline"))
    a = ap.parse_args()
    cache = a.work / "cache"
    table = []
    runs: list[tuple[str, Path, Path]] = []  # (name, day folder with labels, folder for this bench's files)
    for n in [] if a.days else a.sizes:
        day = a.work / f"day_{n}{'_hard' if a.hard else ''}"
        _gen(n, day, a.pools, a.hard)
        runs.append((str(n), day, day))
    for d in a.days:
        runs.append((d.name, d, a.work / d.name))
    for n, day, work in runs:
        work.mkdir(parents=True, exist_ok=True)
        labels = pl.read_parquet(day / "labels.parquet")
        ours_dir = work / f"ours_{a.model}"
        first = _spawn("ours", str(day), str(ours_dir), a.model, str(cache))  # fills the embedding cache
        res = {"ours": _spawn("ours", str(day), str(ours_dir), a.model, str(cache))}
        res["ours"]["shared_embedding_seconds"] = first["embed_seconds"]
        preds = {"ours": ours_dir / "assignments.parquet"}
        for peer in a.peers:
            pred = work / f"{peer}.parquet"
            res[peer] = (
                _spawn(peer, str(day), str(pred), str(ours_dir))
                if peer == "bertopic"
                else _spawn(peer, str(day), str(pred))
            )
            preds[peer] = pred
        for method, r in res.items():
            r.update(quality(labels, pl.read_parquet(preds[method])))
            print(json.dumps({"n": n, "method": method, **r}), flush=True)
            if a.score is not None:
                cmd = [
                    sys.executable,
                    str(a.score),
                    "--labels",
                    str(day / "labels.parquet"),
                    "--pred",
                    str(preds[method]),
                ]
                if method == "ours":
                    cmd += ["--accounts", str(ours_dir / "accounts.parquet")]
                sc = subprocess.run(cmd, capture_output=True, text=True)
                print(f"score.py [{method}, n={n}]:\n" + "\n".join(sc.stdout.strip().splitlines()[-5:]), flush=True)
        for peer in a.peers:
            table.append(
                {
                    "n": n,
                    "vs": peer,
                    "time_ours_over_theirs": round(res["ours"]["seconds"] / max(res[peer]["seconds"], 1e-9), 3),
                    "peak_rss_ours_over_theirs": round(res["ours"]["peak_rss_mb"] / res[peer]["peak_rss_mb"], 3),
                    "f1_ours": res["ours"]["mean_best_cluster_f1"],
                    "f1_theirs": res[peer]["mean_best_cluster_f1"],
                    "ari_ours": res["ours"]["ari_campaign_prompts"],
                    "ari_theirs": res[peer]["ari_campaign_prompts"],
                    "contamination_ours": res["ours"]["benign_contamination"],
                    "contamination_theirs": res[peer]["benign_contamination"],
                }
            )
    with pl.Config(tbl_cols=-1, tbl_width_chars=250):
        print(pl.DataFrame(table))


if __name__ == "__main__":
    main()
