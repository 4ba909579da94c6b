"""The in-process API and the output contract downstream consumers rely on."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import clusterer
from clusterer.cli import app
from clusterer.io import artifacts, outputs

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, day):
    """`clusterer run` on the day written to parquet (the reference for the API)."""
    tmp = tmp_path_factory.mktemp("cli")
    day[0].write_parquet(tmp / "day.parquet")
    res = runner.invoke(
        app,
        ["run", str(tmp / "day.parquet"), "--out", str(tmp / "out"), "--model", "hashing", "--cache-dir",
         str(tmp / "cache"), "--device", "cpu", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return tmp / "out"


def test_polars_and_pandas_frames_give_the_cli_assignments(cli_run, day, fast_cfg):
    expected = pl.read_parquet(cli_run / "assignments.parquet")
    for frame in (day[0], day[0].to_pandas()):
        got = clusterer.cluster(frame, fast_cfg())
        assert got.assignments.equals(expected), type(frame)
        # campaign features are float sums whose last digit can vary with polars' parallel aggregation order
        assert_frame_equal(got.clusters, pl.read_parquet(cli_run / "clusters.parquet"), check_exact=False)
    assert expected["run_id"].n_unique() == 1  # the run ID derives from content: file or frame alike


def test_the_same_rows_in_any_order_give_the_same_results_each_in_its_own_order(day, fast_cfg):
    """kNN and HDBSCAN break ties by position: a day is clustered in prompt-ID order, so the same rows in
    another order (part files listed otherwise, an export sorted by account) give the same run ID, clusters,
    flags and campaign IDs, and each run's assignments follow its own input order."""
    frame = day[0]
    a = clusterer.cluster(frame, fast_cfg())
    for other in (frame.sample(fraction=1.0, shuffle=True, seed=3), frame.sort("account_id", "text")):
        b = clusterer.cluster(other, fast_cfg())
        assert b.assignments["prompt_id"].equals(other["prompt_id"])
        assert_frame_equal(b.assignments.sort("prompt_id"), a.assignments.sort("prompt_id"))
        assert_frame_equal(b.clusters, a.clusters, check_exact=False)
        assert b.accounts.equals(a.accounts) and b.operators.equals(a.operators)
        back = {p: i for i, p in enumerate(other["prompt_id"].to_list())}
        rows = [back[p] for p in frame["prompt_id"].to_list()]
        assert (b.vectors[b.vector_of_row[rows]] == a.vectors[a.vector_of_row]).all()


def test_result_write_is_what_run_writes(tmp_path, cli_run, day, fast_cfg):
    res = clusterer.cluster(day[0], fast_cfg())
    manifest = res.write(tmp_path / "api")
    cli = json.loads((cli_run / "manifest.json").read_text())
    ours = {f["name"]: f["sha256"] for f in manifest["files"] if f["name"] != "clusters.parquet"}
    assert ours == {f["name"]: f["sha256"] for f in cli["files"] if f["name"] != "clusters.parquet"}
    assert_frame_equal(res.clusters, pl.read_parquet(cli_run / "clusters.parquet"), check_exact=False)
    assert sorted(os.listdir(tmp_path / "api")) == sorted(os.listdir(cli_run))


def test_manifest_lists_every_file_with_rows_and_sha256(cli_run):
    m = json.loads((cli_run / "manifest.json").read_text())
    assert m["schema_version"] == artifacts.SCHEMA_VERSION and m["run_id"] and m["day"] == "2026-11-01"
    files = {f["name"]: f for f in m["files"]}
    assert sorted(files) == sorted(artifacts.OUTPUT_FILES)
    for name, f in files.items():
        data = (cli_run / name).read_bytes()
        assert f["bytes"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert files["assignments.parquet"]["rows"] == m["rows"]["in"]
    assert files["clusters.parquet"]["rows"] == m["clusters"]


def test_every_table_carries_run_id_and_day_and_declares_non_null_columns(cli_run):
    m = json.loads((cli_run / "manifest.json").read_text())
    for name in (artifacts.ASSIGNMENTS, artifacts.CLUSTERS, artifacts.ACCOUNTS, artifacts.OPERATORS):
        schema = pq.read_schema(cli_run / name)
        assert schema.names[:2] == ["run_id", "day"], name
        required = {f.name for f in schema if not f.nullable}
        assert required == set(outputs.NOT_NULL[name]) & set(schema.names), name
        df = pl.read_parquet(cli_run / name)
        assert set(df["run_id"].unique().to_list()) <= {m["run_id"]}
        assert all(df[c].null_count() == 0 for c in required)
    assert pq.read_schema(cli_run / artifacts.ASSIGNMENTS).field("campaign_id").nullable


def test_files_follow_the_umask(tmp_path, day, fast_cfg):
    res = clusterer.cluster(day[0].head(100), fast_cfg())
    old = os.umask(0o002)
    try:
        res.write(tmp_path / "group")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "group").stat().st_mode) == 0o775
    for p in (tmp_path / "group").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o664, p.name
    old = os.umask(0o022)
    try:
        res.write(tmp_path / "default")
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "default").iterdir()} == {0o644}


def test_duckdb_joins_and_campaign_timeline(cli_run, day):
    traffic, labels = day
    con = duckdb.connect()
    con.register("labels", labels.to_arrow())
    a, c = str(cli_run / "assignments.parquet"), str(cli_run / "clusters.parquet")
    joined = con.sql(
        f"""
        select l.kind, count(*) as prompts, count(*) filter (where a.flagged) as flagged
        from read_parquet('{a}') a join labels l using (prompt_id)
        group by l.kind order by l.kind
        """
    ).pl()
    assert joined["prompts"].sum() == traffic.height  # every prompt joins exactly once
    assert joined.filter(pl.col("kind") == "campaign")["flagged"][0] > 0
    timeline = con.sql(
        f"""
        select a.campaign_id, date_trunc('hour', a.timestamp) as hour, count(*) as prompts,
               count(distinct a.account_id) as accounts, any_value(c.template) as template
        from read_parquet('{a}') a join read_parquet('{c}') c using (run_id, cluster_id)
        where a.campaign_id is not null
        group by all order by a.campaign_id, hour
        """
    ).pl()
    assert timeline.height > 0 and timeline["campaign_id"].str.starts_with("cmp-").all()
    flagged = pl.read_parquet(a).filter(pl.col("campaign_id").is_not_null()).height
    assert timeline["prompts"].sum() == flagged


def test_config_argument_forms(tmp_path, day):
    from clusterer.api import resolve_config

    toml = tmp_path / "c.toml"
    toml.write_text("[graph]\nk = 20\n[skeleton]\nmin_df = 4\n")
    assert resolve_config(toml, k=12).graph.k == 12
    assert resolve_config(toml).skeleton.min_df == 4
    assert resolve_config({"graph": {"k": 9}}, model="hashing").embed.model == "hashing"
    assert resolve_config(None, graph__k=7, cluster={"min_samples": 3}).cluster.min_samples == 3
    base = resolve_config(None, model="hashing")
    assert resolve_config(base, seed=3).seed == 3 and resolve_config(base, seed=3).embed.model == "hashing"
    with pytest.raises(TypeError, match="config must be"):
        resolve_config(42)
    with pytest.raises(ValueError, match="graph.k must be an integer|graph.k must be of type int"):
        resolve_config(None, k="many")
