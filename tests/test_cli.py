import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from clusterer.cli import app

DATA = Path(__file__).resolve().parent.parent / "data"
runner = CliRunner()


def _args(tmp_path, *extra):
    return ["run", *extra, "--model", "hashing", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]


def test_run_on_bundled_sample(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, [*_args(tmp_path, str(DATA / "sample_day.parquet"), "--out", str(out))])
    assert res.exit_code == 0, res.output
    a = pl.read_parquet(out / "assignments.parquet")
    src = pl.read_parquet(DATA / "sample_day.parquet")
    assert a["prompt_id"].to_list() == src["prompt_id"].to_list()
    assert "top 10 template families by campaign score" in res.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["rows"]["in"] == src.height and m["device"]["backend"] == "cpu"


def test_bad_input_exits_2_with_one_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("prompt_id,text\n1,hello\n")
    res = runner.invoke(app, [*_args(tmp_path, str(path), "--out", str(tmp_path / "o"))])
    assert res.exit_code == 2
    assert "error:" in res.output and "missing column 'account_id'" in res.output
    assert "Traceback" not in res.output


def test_bad_option_value_exits_2(tmp_path):
    res = runner.invoke(
        app, [*_args(tmp_path, str(DATA / "sample_day.parquet"), "--out", str(tmp_path / "o"), "--k", "1")]
    )
    assert res.exit_code == 2 and "graph.k must be within" in res.output


def test_cuda_requested_without_gpu_exits_2(tmp_path):
    from clusterer.backend import gpu_count

    if gpu_count():
        pytest.skip("a GPU is visible")
    res = runner.invoke(
        app,
        [
            "run",
            str(DATA / "sample_day.parquet"),
            "--out",
            str(tmp_path / "o"),
            "--device",
            "cuda",
            "--model",
            "hashing",
        ],
    )
    assert res.exit_code == 2 and "no CUDA device is visible" in res.output


def test_config_file_and_renamed_columns(tmp_path):
    src = pl.read_parquet(DATA / "sample_day.parquet").head(200).rename({"text": "body"})
    path = tmp_path / "day.jsonl"
    src.write_ndjson(path)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[ingest]\ntext_col = "body"\n[cluster]\nmin_cluster_size = 5\n')
    res = runner.invoke(
        app, [*_args(tmp_path, str(path), "--out", str(tmp_path / "o"), "--config", str(cfg), "--quiet")]
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["config"]["cluster"]["min_cluster_size"] == 5 and m["config"]["ingest"]["text_col"] == "body"


def test_doctor_runs():
    res = runner.invoke(app, ["doctor"])
    assert res.exit_code == 0
    assert "default model" in res.output and "CUDA devices" in res.output


@pytest.mark.slow
def test_sample_day_with_default_model_finds_both_campaigns(tmp_path):
    """End to end with the packaged MiniLM: each campaign of the sample day is one cluster, and no
    legitimate-customer or shared-prompt row lands in a campaign's cluster."""
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["run", str(DATA / "sample_day.parquet"), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q"]
    )
    assert res.exit_code == 0, res.output
    a = pl.read_parquet(out / "assignments.parquet").join(
        pl.read_parquet(DATA / "sample_labels.parquet"), on="prompt_id"
    )
    for camp in ("sample_reward_grader", "sample_code_reasoning"):
        rows = a.filter(pl.col("label") == camp)
        top = rows["cluster_id"].mode().sort()[0]
        assert top >= 0
        in_top = a.filter(pl.col("cluster_id") == top)
        f1 = 2 * (rows["cluster_id"] == top).sum() / (rows.height + in_top.height)
        assert f1 > 0.9, (camp, f1)
        assert in_top.filter(pl.col("kind") != "campaign").height <= 0.01 * in_top.height


def test_show_lists_families_and_rejects_missing_runs(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, [*_args(tmp_path, str(DATA / "sample_day.parquet"), "--out", str(out), "-q")])
    assert res.exit_code == 0, res.output
    shown = runner.invoke(app, ["show", str(out), "--top", "3"])
    assert shown.exit_code == 0 and "top 3 template families" in shown.output
    missing = runner.invoke(app, ["show", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_doctor_plan_prints_a_memory_plan():
    from typer.testing import CliRunner

    from clusterer.cli import app
    from clusterer.plan import predict

    res = CliRunner().invoke(app, ["doctor", "--plan", "1000000", "--model", "static"])
    assert res.exit_code == 0, res.output
    assert "1,000,000 prompts" in res.output and "cluster" in res.output
    small, big = predict(100_000), predict(1_000_000)
    assert big.peak_mb > small.peak_mb > 500
    assert predict(1_000_000, k=30).peak_mb > big.peak_mb
    assert predict(1_000_000, pairs_per_row=60).peak_mb > big.peak_mb
    assert predict(1_000_000, model="static").seconds < big.seconds
