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


def test_an_empty_out_is_refused_not_read_as_the_working_directory(tmp_path):
    """``--out ""`` is ``Path("")``, the working directory, which an output set replaces: refused."""
    res = runner.invoke(app, [*_args(tmp_path, str(DATA / "sample_day.parquet"), "--out", "")])
    assert res.exit_code == 2 and "is empty" in res.output
    res = runner.invoke(app, ["fingerprints", "export", "--registry", str(tmp_path / "r"), "--out", " "])
    assert res.exit_code == 2 and "is empty" in res.output


def test_bad_option_value_exits_2(tmp_path):
    res = runner.invoke(
        app, [*_args(tmp_path, str(DATA / "sample_day.parquet"), "--out", str(tmp_path / "o"), "--k", "1")]
    )
    assert res.exit_code == 2 and "graph.k must be within" in res.output


def test_cuda_requested_without_gpu_exits_2(tmp_path):
    from clusterer.accel.backend import gpu_count

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
    from clusterer.run.plan import predict

    res = CliRunner().invoke(app, ["doctor", "--plan", "1000000", "--model", "static"])
    assert res.exit_code == 0, res.output
    assert "1,000,000 prompts" in res.output and "cluster" in res.output
    small, big = predict(100_000), predict(1_000_000)
    assert big.peak_mb > small.peak_mb > 500
    assert predict(1_000_000, k=30).peak_mb > big.peak_mb
    assert predict(1_000_000, pairs_per_row=60).peak_mb > big.peak_mb
    assert predict(1_000_000, model="static").seconds < big.seconds


@pytest.mark.parametrize(
    "args",
    [
        ["--plan", "-5"],
        ["--plan", "1000", "--k", "1"],
        ["--plan", "1000", "--distinct", "1.5"],
        ["--plan", "1000", "--distinct", "nan"],
        ["--plan", "1000", "--pairs-per-row", "inf"],
        ["--plan", "1000", "--avg-chars", "-1"],
        ["--plan", "1000", "--engine", "ray", "--workers", "0"],
    ],
)
def test_doctor_plan_refuses_values_no_run_can_have(args):
    from typer.testing import CliRunner

    from clusterer.cli import app

    res = CliRunner().invoke(app, ["doctor", *args])
    assert res.exit_code == 2 and "Invalid value" in res.output, res.output


def test_version():
    from clusterer import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"clusterer {__version__}"


def test_run_json_on_stdout_logs_on_stderr_and_show_json(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app, [*_args(tmp_path, str(DATA / "sample_day.parquet"), "--out", str(out), "--json", "--log-format", "json")]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # stdout is one JSON document, nothing else
    assert doc["out"] == str(out) and doc["run_id"] and doc["schema_version"] == 2
    assert {f["name"] for f in doc["files"]} >= {"assignments.parquet", "clusters.parquet"}
    logs = [json.loads(line) for line in res.stderr.splitlines() if line.strip()]
    assert {r["logger"] for r in logs} == {"clusterer"} and any(r.get("stage") == "embed" for r in logs)
    shown = runner.invoke(app, ["show", str(out), "--json", "--top", "50"])
    assert shown.exit_code == 0, shown.output
    top = json.loads(shown.stdout)
    assert top["run_id"] == doc["run_id"] and top["clusters"] == doc["clusters"]
    ids = [f["campaign_id"] for f in top["top_families"] if f["campaign_id"]]
    assert ids and all(len(i) == len("cmp-") + 16 for i in ids)  # full IDs, never cut to a column width


def test_help_shows_defaults():
    res = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for text in ("[default: (15)]", "[default: (default)]", "[default: (64)]", "[default: (error)]"):
        assert text in res.stdout, text


def test_progress_lines_when_not_a_terminal(caplog):
    import logging
    import time

    from clusterer.progress import Reporter

    rep = Reporter(quiet=False, interval=0.05, live=False)
    with caplog.at_level(logging.INFO, logger="clusterer"):
        with rep.stage("embed", total=10) as advance:
            advance(4)
            time.sleep(0.3)
    beats = [r.getMessage() for r in caplog.records if "running for" in r.getMessage()]
    assert beats and "4 / 10 done" in beats[-1]
    assert rep.stages["embed"]["seconds"] >= 0.3


def test_bad_input_fails_fast_without_heavy_imports(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "x.csv"
    path.write_text("prompt_id,text\n1,hello\n")
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom clusterer.cli import app\n"
        f"r = CliRunner().invoke(app, ['run', {str(path)!r}, '--out', {str(tmp_path / 'o')!r}])\n"
        "print(r.exit_code)\n"
        "print(sorted(m for m in ('torch', 'faiss', 'numba', 'scipy', 'sentence_transformers', 'hdbscan') "
        "if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.split("\n")[:2] == ["2", "[]"]


def test_quiet_silences_third_party_output():
    import logging
    import os

    from clusterer.progress import setup_logging

    setup_logging(quiet=True)
    try:
        assert os.environ.get("TQDM_DISABLE") == "1" and os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1"
        for name in ("transformers", "model2vec", "sentence_transformers"):
            assert logging.getLogger(name).getEffectiveLevel() >= logging.ERROR
        assert logging.getLogger("clusterer").getEffectiveLevel() == logging.WARNING
    finally:
        setup_logging(quiet=False)


def test_every_flag_an_input_error_suggests_is_an_option_of_each_command_that_reads_logs():
    """An ingest error tells the user which flag to pass (`--null-timestamps skip`, `--fill-account`, ...):
    `run` and `assign` both read logs through it, so both must accept every flag it names."""
    import re

    import clusterer.io.ingest as ingest
    from clusterer.config import options

    named = set(re.findall(r"--[a-z][a-z0-9-]*[a-z0-9]", Path(ingest.__file__).read_text(encoding="utf-8")))
    assert {"--null-timestamps", "--fill-account"} <= named
    for command in ("run", "assign"):
        flags = {o.flag for o in options(command)}
        assert named <= flags, (command, sorted(named - flags))
