import json
import os

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from clusterer import api
from clusterer.errors import OutputError
from clusterer.io.outputs import ACCOUNT_SCHEMA, ASSIGNMENT_SCHEMA, CLUSTER_SCHEMA


def test_run_writes_all_outputs(tmp_path, day_file, day, fast_cfg):
    out = tmp_path / "out"
    manifest = api.run([day_file], out, fast_cfg())
    traffic, labels = day
    a = pl.read_parquet(out / "assignments.parquet")
    assert a.columns[: len(ASSIGNMENT_SCHEMA)] == list(ASSIGNMENT_SCHEMA)
    assert a["prompt_id"].to_list() == traffic["prompt_id"].to_list()
    c = pl.read_parquet(out / "clusters.parquet")
    assert dict(c.schema) == CLUSTER_SCHEMA
    acc = pl.read_parquet(out / "accounts.parquet")
    assert dict(acc.schema) == ACCOUNT_SCHEMA
    assert acc["prompts"].sum() == traffic.height
    assert c["size"].sum() == (a["cluster_id"] >= 0).sum()
    # the two templated campaigns come out as clusters
    lab = labels.join(a, on="prompt_id")
    camp = lab.filter(pl.col("kind") == "campaign")
    assert adjusted_rand_score(camp["label"].to_list(), camp["cluster_id"].to_list()) > 0.9
    assert (camp["cluster_id"] >= 0).mean() > 0.9
    m = json.loads((out / "manifest.json").read_text())
    assert m == json.loads(json.dumps(manifest, default=str))
    assert m["rows"]["in"] == m["rows"]["out"] == traffic.height
    assert list(m["stages"]) == [
        "ingest",
        "normalise",
        "skeleton",
        "embed",
        "knn",
        "signatures",
        "candidates",
        "overlap",
        "cluster",
        "templates",
        "campaigns",
        "tables",
        "write",
    ]
    assert m["inputs"][0]["rows"] == traffic.height
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no temp files left


def test_same_input_same_ids_and_cache_reuse(tmp_path, day_file, fast_cfg):
    cfg = fast_cfg()
    m1 = api.run([day_file], tmp_path / "r1", cfg)
    m2 = api.run([day_file], tmp_path / "r2", cfg)
    a1 = pl.read_parquet(tmp_path / "r1" / "assignments.parquet")
    a2 = pl.read_parquet(tmp_path / "r2" / "assignments.parquet")
    assert a1["cluster_id"].to_list() == a2["cluster_id"].to_list()
    assert m1["embedding"]["computed"] > 0 and m2["embedding"]["computed"] == 0
    assert m2["embedding"]["from_cache"] == m1["embedding"]["computed"]
    # and with no cache at all (vectors go through float16 either way)
    api.run([day_file], tmp_path / "r3", fast_cfg(**{"embed.cache_dir": "none"}))
    a3 = pl.read_parquet(tmp_path / "r3" / "assignments.parquet")
    assert a3["cluster_id"].to_list() == a1["cluster_id"].to_list()


def test_empty_and_huge_texts_are_kept(tmp_path, day, fast_cfg):
    traffic = day[0].head(60)
    texts = traffic["text"].to_list()
    texts[3] = None
    texts[4] = "   \n "
    texts[5] = "word " * 200_000  # 1 MB prompt
    path = tmp_path / "x.parquet"
    traffic.with_columns(pl.Series("text", texts)).write_parquet(path)
    m = api.run([path], tmp_path / "out", fast_cfg())
    a = pl.read_parquet(tmp_path / "out" / "assignments.parquet")
    assert a.height == 60
    assert a["status"][3] == a["status"][4] == "empty_text"
    assert a["cluster_id"][3] == -1
    assert a["truncated"][5] and a["status"][5] in ("clustered", "noise")
    assert m["rows"]["not_clustered"]["empty_text"] == 2 and m["rows"]["truncated"] == 1


def test_empty_input_gives_valid_empty_outputs(tmp_path, day, fast_cfg):
    path = tmp_path / "e.parquet"
    day[0].head(0).write_parquet(path)
    m = api.run([path], tmp_path / "out", fast_cfg())
    for name, schema in (
        ("assignments", ASSIGNMENT_SCHEMA),
        ("clusters", CLUSTER_SCHEMA),
        ("accounts", ACCOUNT_SCHEMA),
    ):
        df = pl.read_parquet(tmp_path / "out" / f"{name}.parquet")
        assert df.height == 0
        assert list(df.schema) == list(schema)
    assert m["rows"]["in"] == m["rows"]["out"] == 0


def test_unwritable_out(tmp_path, day_file, fast_cfg):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"--out .*file/sub is not writable"):
        api.run([day_file], blocker / "sub", fast_cfg())


_text = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["same prompt", "Same  PROMPT", ""]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_text, min_size=0, max_size=40), accounts=st.integers(1, 5))
def test_every_row_exactly_once(tmp_path_factory, fast_cfg, texts, accounts):
    tmp = tmp_path_factory.mktemp("prop")
    n = len(texts)
    df = pl.DataFrame(
        {
            "prompt_id": [f"r{i}" for i in range(n)],
            "account_id": [f"a{i % accounts}" for i in range(n)],
            "timestamp": [1_764_000_000 + i for i in range(n)],
            "text": pl.Series(texts, dtype=pl.String),
        }
    )
    path = tmp / "in.parquet"
    df.write_parquet(path)
    api.run([path], tmp / "out", fast_cfg(**{"cluster.min_cluster_size": 2, "cluster.min_samples": 1, "graph.k": 3}))
    a = pl.read_parquet(tmp / "out" / "assignments.parquet")
    assert a["prompt_id"].to_list() == df["prompt_id"].to_list()
    assert a["status"].is_in(["clustered", "noise", "empty_text"]).all()
    assert ((a["status"] == "clustered") == (a["cluster_id"] >= 0)).all()
    ids = np.unique(a["cluster_id"].to_numpy())
    assert list(ids[ids >= 0]) == list(range(int((ids >= 0).sum())))


def test_a_campaign_sent_with_invisible_characters_and_lookalike_letters_clusters_as_sent_plainly(
    tmp_path, day, fast_cfg
):
    """Character-level evasion (zero-width characters, Cyrillic / Greek look-alikes, stacked marks in every
    campaign prompt) changes no cluster: the same day sent plainly and obfuscated gets the same assignments."""
    from clusterer.synth import obfuscate

    traffic, labels = day
    rng = np.random.default_rng(11)
    camp = set(labels.filter(pl.col("kind") == "campaign")["prompt_id"].to_list())
    dirty = traffic.with_columns(
        pl.Series(
            "text",
            [obfuscate(t, rng, 0.3) if p in camp else t for p, t in traffic.select("prompt_id", "text").iter_rows()],
        )
    )
    assert (dirty["text"] != traffic["text"]).sum() > 0.9 * len(camp)
    got = {}
    for name, frame in (("plain", traffic), ("dirty", dirty)):
        frame.write_parquet(tmp_path / f"{name}.parquet")
        api.run([tmp_path / f"{name}.parquet"], tmp_path / name, fast_cfg())
        got[name] = pl.read_parquet(tmp_path / name / "assignments.parquet").select(
            "prompt_id", "cluster_id", "flagged"
        )
    assert got["plain"].equals(got["dirty"])
    assert got["plain"].filter(pl.col("prompt_id").is_in(list(camp)))["cluster_id"].ge(0).mean() > 0.9
