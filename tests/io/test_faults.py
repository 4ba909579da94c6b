"""Faults and bad input found by probing the tool: each ends in exit 2 naming file / column / example rows,
or in correct output; never a traceback, never silent loss."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import clusterer
from clusterer.cli import app
from clusterer.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _cli(tmp_path, *args):
    return runner.invoke(app, [*args, "--model", "hashing", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"])


def _run(tmp_path, inp, out, *extra):
    return _cli(tmp_path, "run", str(inp), "--out", str(out), "-q", *extra)


def _error_line(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    return res.stderr.strip()


# --- null values -------------------------------------------------------------------------------------------


def test_null_org_id_is_an_org_of_its_own(tmp_path, day, fast_cfg):
    """One null org_id used to wrap to code 2^32 - 1 and size arrays by it (32 GiB)."""
    traffic, labels = day
    orgs = [f"org{i % 7}" for i in range(traffic.height)]
    orgs[5] = None
    res = clusterer.cluster(traffic.with_columns(pl.Series("org_id", orgs)), fast_cfg())
    a = res.assignments
    assert a.height == traffic.height and a["org_id"][5] is None  # carried through unchanged
    camp = a.join(labels, on="prompt_id").filter(pl.col("kind") == "campaign")
    assert (camp["cluster_id"] >= 0).mean() > 0.9
    assert res.manifest["campaigns"]["signals_used"]["org_id"]


def test_null_timestamp_is_an_error_naming_rows_before_heavy_work(tmp_path, day):
    traffic = (
        day[0]
        .head(50)
        .with_columns(
            pl.when(pl.int_range(pl.len()).is_in([3, 17])).then(None).otherwise(pl.col("timestamp")).alias("timestamp")
        )
    )
    path = tmp_path / "day.parquet"
    traffic.write_parquet(path)
    code = (
        "import sys, clusterer\n"
        "from clusterer.errors import InputError\n"
        f"try:\n    clusterer.cluster([{str(path)!r}], model='hashing', cache_dir='none', quiet=True)\n"
        "except InputError as e:\n    print(e)\n"
        "print(sorted(m for m in ('torch', 'faiss', 'numba', 'scipy', 'sentence_transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    msg, heavy = out.strip().splitlines()
    assert "column 'timestamp' is null or empty in 2 rows" in msg and f"{path} row 3" in msg and "row 17" in msg
    assert "--null-timestamps skip" in msg
    assert heavy == "[]"  # refused before the heavy libraries were imported


def test_null_timestamps_skip_keeps_rows_unclustered(tmp_path, day, fast_cfg):
    traffic = day[0].with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col("timestamp")).alias("timestamp")
    )
    res = clusterer.cluster(traffic, fast_cfg(), null_timestamps="skip")
    a = res.assignments
    assert a.height == traffic.height
    assert a["status"][4] == "no_timestamp" and a["cluster_id"][4] == -1
    assert res.manifest["rows"]["not_clustered"]["no_timestamp"] == 1
    assert (a["status"] == "clustered").sum() > 0


def test_logs_of_more_than_one_day_are_run_with_a_warning_and_their_span_in_the_manifest(day, fast_cfg, caplog):
    """The run is dated by its median row; rows of another UTC date are counted in the manifest and, beyond
    the stragglers of a day's log (1%), named in a warning, not silently counted on that date."""
    import datetime as dt
    import logging

    traffic = day[0].with_columns(
        pl.when(pl.int_range(pl.len()) < 50)
        .then(pl.col("timestamp") - dt.timedelta(days=1))
        .otherwise(pl.col("timestamp"))
        .alias("timestamp")
    )
    with caplog.at_level(logging.WARNING, logger="clusterer"):
        res = clusterer.cluster(traffic, fast_cfg())
    span = res.manifest["span"]
    assert span["rows_outside_day"] == 50 and span["first"] < span["last"]
    assert any("50 of" in r.getMessage() and "fall outside" in r.getMessage() for r in caplog.records)
    assert res.assignments.height == traffic.height
    # one day's logs with a straggler past midnight: counted, not warned about
    caplog.clear()
    one = day[0].with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("timestamp").max().dt.truncate("1d") + dt.timedelta(days=1, minutes=5))
        .otherwise(pl.col("timestamp"))
        .alias("timestamp")
    )
    with caplog.at_level(logging.WARNING, logger="clusterer"):
        res = clusterer.cluster(one, fast_cfg())
    assert res.manifest["span"]["rows_outside_day"] == 1
    assert not any("fall outside" in r.getMessage() for r in caplog.records)


# --- embedding cache ---------------------------------------------------------------------------------------


def _shards(cache: Path) -> list[Path]:
    return sorted(cache.rglob("shard-*.npz"))


@pytest.mark.parametrize("damage", ["truncated", "zero_bytes"])
def test_damaged_cache_shard_is_a_warned_miss(tmp_path, day_file, damage, caplog):
    cache = tmp_path / "cache"
    first = runner.invoke(app, ["run", str(day_file), "--out", str(tmp_path / "a"), "--model", "hashing",
                                "--cache-dir", str(cache), "-q"])  # fmt: skip
    assert first.exit_code == 0, first.output
    shard = _shards(cache)[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    second = runner.invoke(app, ["run", str(day_file), "--out", str(tmp_path / "b"), "--model", "hashing",
                                 "--cache-dir", str(cache)])  # fmt: skip
    assert second.exit_code == 0, second.output
    assert "is damaged" in second.stderr and "treating it as a miss" in second.stderr
    a = pl.read_parquet(tmp_path / "a" / "assignments.parquet")
    b = pl.read_parquet(tmp_path / "b" / "assignments.parquet")
    assert a["cluster_id"].to_list() == b["cluster_id"].to_list()
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["embedding"]["computed"] > 0  # the damaged shard's texts were embedded again ...
    third = runner.invoke(app, ["run", str(day_file), "--out", str(tmp_path / "c"), "--model", "hashing",
                                "--cache-dir", str(cache), "-q"])  # fmt: skip
    assert (
        third.exit_code == 0
        and json.loads((tmp_path / "c" / "manifest.json").read_text())["embedding"]["computed"] == 0
    )  # ... and stored again: the cache healed


def test_unwritable_cache_dir_is_a_warning(tmp_path, day_file):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # a cache path under a file cannot be created, even by root
    res = runner.invoke(app, ["run", str(day_file), "--out", str(tmp_path / "o"), "--model", "hashing",
                              "--cache-dir", str(blocker / "cache")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "cannot be written" in res.stderr and "going on without storing" in res.stderr
    assert pl.read_parquet(tmp_path / "o" / "assignments.parquet").height > 0


# --- registry ----------------------------------------------------------------------------------------------


def _registry(tmp_path, day_file) -> Path:
    reg = tmp_path / "reg"
    res = _run(tmp_path, day_file, tmp_path / "r0", "--registry", str(reg))
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(reg / "campaigns.parquet").height >= 1
    return reg


def test_registry_missing_daily_is_refused_and_kept(tmp_path, day_file):
    reg = _registry(tmp_path, day_file)
    (reg / "daily.parquet").unlink()
    before = (reg / "campaigns.parquet").read_bytes()
    res = _run(tmp_path, day_file, tmp_path / "r1", "--registry", str(reg))
    err = _error_line(res)
    assert f"registry {reg} is damaged" in err and "no daily.parquet" in err
    assert (reg / "campaigns.parquet").read_bytes() == before  # nothing lost
    assert not (tmp_path / "r1").exists()  # refused before any work


def test_registry_of_another_dimension_is_refused_before_work(tmp_path, day_file):
    reg = _registry(tmp_path, day_file)  # hashing model: 384-dim centroids
    res = runner.invoke(
        app, ["run", str(day_file), "--out", str(tmp_path / "r1"), "--model", "static", "--registry", str(reg)]
    )
    err = _error_line(res)
    assert "holds 384-dim campaign centroids" in err and "'static' (256-dim)" in err


def test_registry_that_is_a_file_is_refused_before_work(tmp_path, day_file):
    path = tmp_path / "reg.parquet"
    path.write_text("x")
    res = _run(tmp_path, day_file, tmp_path / "r1", "--registry", str(path))
    assert "is a file; a registry is a directory" in _error_line(res)
    assert not (tmp_path / "r1").exists()


def test_registry_with_a_tampered_file_is_refused(tmp_path, day_file):
    reg = _registry(tmp_path, day_file)
    pl.read_parquet(reg / "daily.parquet").head(0).write_parquet(reg / "daily.parquet")
    res = _run(tmp_path, day_file, tmp_path / "r1", "--registry", str(reg))
    assert "does not match manifest.json" in _error_line(res)


# --- text columns and chat logs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "dtype_text"),
    [([{"a": "x", "b": 1}] * 3, "Struct"), ([["x", "y"]] * 3, "List(String)")],
)
def test_struct_or_list_text_column_is_refused(tmp_path, values, dtype_text):
    df = pl.DataFrame(
        {"prompt_id": ["1", "2", "3"], "account_id": ["a"] * 3, "timestamp": [1_764_000_000] * 3, "text": values}
    )
    path = tmp_path / "x.parquet"
    df.write_parquet(path)
    err = _error_line(_run(tmp_path, path, tmp_path / "o"))
    assert f"{path}: column 'text' holds {dtype_text}" in err and "not text" in err and "row 0" in err
    assert "\n" not in err  # one line, not a multi-line library error


CHAT = [
    {
        "account_id": "a1",
        "timestamp": "2026-11-26T10:00:00Z",
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Solve x + 1 = 2"}, {"type": "image_url"}]},
            {"role": "assistant", "content": "x = 1"},
        ],
    },
    {
        "account_id": "a2",
        "timestamp": "2026-11-26T10:01:00Z",
        "messages": [{"role": "system", "content": "Sys"}, {"role": "user", "content": "plain"}],
    },
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_chat_content_parts_take_the_text_parts_and_developer_turns(tmp_path, fmt):
    from clusterer.config import IngestConfig
    from clusterer.io.ingest import read_logs

    if fmt == "jsonl":
        path = tmp_path / "chat.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in CHAT) + "\n")
        expected_second = "Sys\nplain"
    else:  # parquet holds one content type per column: every content is a list of parts
        path = tmp_path / "chat.parquet"

        def parts(*texts: str) -> list[dict[str, str | None]]:
            return [{"type": "text", "text": t} for t in texts] + [{"type": "image_url", "text": None}]

        rows = [
            {
                **CHAT[0],
                "messages": [
                    {"role": "developer", "content": parts("Be terse.")},
                    {"role": "user", "content": parts("Solve x + 1 = 2")},
                    {"role": "assistant", "content": parts("x = 1")},
                ],
            },
            {**CHAT[1], "messages": [{"role": "user", "content": parts("p", "q")}]},
        ]
        pl.DataFrame(rows).write_parquet(path)
        expected_second = "p\nq"
    got = read_logs([path], IngestConfig()).frame["text"].to_list()
    assert got == ["Be terse.\nSolve x + 1 = 2", expected_second]


# --- days that are one template ----------------------------------------------------------------------------


def _one_template_day(texts: list[str]) -> pl.DataFrame:
    n = len(texts)
    start = dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)
    return pl.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(n)],
            "account_id": [f"acct{i % 300:03d}" for i in range(n)],
            "timestamp": [start + dt.timedelta(seconds=28 * i) for i in range(n)],
            "text": texts,
        }
    )


@pytest.mark.parametrize("variant", ["identical", "numbers"])
def test_a_day_of_one_template_is_one_cluster(fast_cfg, variant):
    base = "Reason step by step inside <thinking> tags, then give the final answer to problem {}: {} + {}."
    texts = [base.format(7, 7, 7) if variant == "identical" else base.format(i, i * 3, i * 7) for i in range(3000)]
    res = clusterer.cluster(_one_template_day(texts), fast_cfg())
    assert (res.assignments["cluster_id"] == 0).all()
    assert res.clusters.height == 1 and res.clusters["n_accounts"][0] == 300


# --- non-Latin scripts -------------------------------------------------------------------------------------

ZH = "请一步一步地思考，并在<思考>标签内写出推理过程，然后给出最终答案。题目：{}"
ZH_WORDS = list("苹果香蕉长方形面积乘以等于多少还剩几个小明老师学生火车速度小时公里价格元钱买卖")
EN_WORDS = "dinner recipe garden travel music weather movie book coffee bike river city code idea".split()


def _cjk_day(reverse: bool) -> pl.DataFrame:
    """A Chinese scaffold with varied payloads over 20 accounts, inside 500 varied English prompts."""
    rng = np.random.default_rng(3)
    texts, accts = [], []
    for i in range(200):
        texts.append(ZH.format("".join(rng.choice(ZH_WORDS, rng.integers(8, 16)))))
        accts.append(f"zh{i % 20:02d}")
    for i in range(500):
        texts.append(" ".join(rng.choice(EN_WORDS, rng.integers(6, 12))) + f" {i}?")
        accts.append(f"u{i:03d}")
    df = _one_template_day(texts).with_columns(pl.Series("account_id", accts))
    return df.reverse() if reverse else df


def test_cjk_campaign_gets_a_template_and_a_content_derived_id(fast_cfg):
    ids = []
    for reverse in (False, True):
        res = clusterer.cluster(_cjk_day(reverse), fast_cfg())
        zh = res.clusters.filter(pl.col("template").str.contains("一步一步地思考"))
        assert zh.height == 1, res.clusters.select("template", "size")
        assert zh["flagged"][0] and "{…}" in zh["template"][0]
        cid = zh["campaign_id"][0]
        assert cid.startswith("cmp-") and not cid.startswith("cmp-x")
        ids.append(cid)
    assert ids[0] == ids[1]  # the same family gets the same ID whatever the order of families


# --- output directory --------------------------------------------------------------------------------------


def test_out_inside_an_input_directory_is_refused(tmp_path, day):
    logs = tmp_path / "logs"
    logs.mkdir()
    day[0].write_parquet(logs / "part-0.parquet")
    for out in (logs, logs / "out"):
        err = _error_line(_run(tmp_path, logs, out))
        assert "is inside the input directory" in err
    err = _error_line(_run(tmp_path, f"{logs}/*.parquet", logs))
    assert "is under the input glob" in err
    assert sorted(p.name for p in logs.iterdir()) == ["part-0.parquet"]


def test_an_output_is_refused_only_where_the_input_glob_could_read_it(tmp_path, monkeypatch):
    """A glob reads files at the depth its parts give (``**`` anywhere under its fixed root): an output folder
    the glob cannot reach is allowed, so a glob matching nothing gets its own error, not an --out one."""
    from clusterer.api import _glob_reaches

    logs = tmp_path / "logs"
    cases = [
        (f"{logs}/*.parquet", logs, False, True),
        (f"{logs}/*.parquet", logs / "run1", False, False),
        (f"{logs}/*/*.parquet", logs / "run1", False, True),
        (f"{logs}/h*/*.parquet", logs / "run1", False, False),
        (f"{logs}/**/*.parquet", logs / "a" / "b", False, True),
        (f"{logs}/nothing*.parquet", logs / "out" / "x", False, False),
        (f"{logs}/p*.parquet", logs / "p1.parquet", True, True),
        (f"{logs}/p*.parquet", logs / "q.parquet", True, False),
        ("*.parquet", tmp_path, False, True),
        ("*.parquet", tmp_path / "o", False, False),
    ]
    monkeypatch.chdir(tmp_path)
    for pattern, path, is_file, reaches in cases:
        assert _glob_reaches(pattern, path, is_file) is reaches, (pattern, path)


def test_input_columns_named_like_outputs_are_carried_under_another_name(tmp_path, day):
    """A log's own `cluster_id`, `status`, `run_id` or `_private` column is carried as `input_<name>` with
    its values, not dropped or overwritten by the run's columns of that name."""
    traffic = day[0].head(300)
    n = traffic.height
    inp = tmp_path / "cols.parquet"
    traffic.with_columns(
        pl.lit("mine").alias("cluster_id"),
        pl.lit("z").alias("status"),
        pl.lit(3).alias("run_id"),
        pl.int_range(0, n).alias("_private"),
        pl.lit("taken").alias("input_status"),
    ).write_parquet(inp)
    out = tmp_path / "o"
    assert _run(tmp_path, inp, out).exit_code == 0
    a = pl.read_parquet(out / "assignments.parquet")
    assert a["cluster_id"].dtype == pl.Int64 and a["status"].is_in(["clustered", "noise", "empty_text"]).all()
    assert a["input_cluster_id"].to_list() == ["mine"] * n and a["input_run_id"].to_list() == [3] * n
    assert a["input_input_status"].to_list() == ["z"] * n and a["input_status"].to_list() == ["taken"] * n
    assert a["input__private"].to_list() == list(range(n))


def test_the_manifest_records_inputs_by_absolute_path(tmp_path, day, monkeypatch):
    """A run given a relative path records where the file is, so `report` and `fingerprints match` find it
    from any working directory."""
    monkeypatch.chdir(tmp_path)
    day[0].head(200).write_parquet("rel.parquet")
    assert _run(tmp_path, "rel.parquet", tmp_path / "o").exit_code == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["inputs"][0]["path"] == str(tmp_path / "rel.parquet")


def test_a_file_output_never_replaces_an_input_a_run_file_or_the_key(tmp_path, day_file):
    """`assign --out`, `report --out` and `fingerprints export --out` write one file: never over the log they
    read, into a run's output set (besides its report.html) or over the key file they read."""
    run, reg = tmp_path / "r", tmp_path / "reg"
    assert _run(tmp_path, day_file, run, "--registry", str(reg)).exit_code == 0
    before = day_file.read_bytes()
    res = runner.invoke(app, ["assign", str(day_file), "--registry", str(reg), "--out", str(day_file), "-q"])
    assert "is the input" in _error_line(res)
    assert day_file.read_bytes() == before
    files = {p.name: p.read_bytes() for p in run.iterdir()}
    for out, said in (
        (run / "assignments.parquet", "is inside the run's output set"),
        (run / "x.html", "inside"),
        (day_file, "would overwrite an input of the run"),
    ):
        res = runner.invoke(app, ["report", str(run), "--out", str(out), "-q"])
        assert said in _error_line(res)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == files and day_file.read_bytes() == before
    assert runner.invoke(app, ["report", str(run), "--out", str(run / "report.html"), "-q"]).exit_code == 0
    key = tmp_path / "key"
    key.write_text("k" * 64)
    res = runner.invoke(
        app, ["fingerprints", "export", "--registry", str(reg), "--out", str(key), "--key-file", str(key)]
    )
    assert "would overwrite the key file" in _error_line(res)
    assert key.read_text() == "k" * 64


def test_a_registry_inside_an_input_directory_is_refused(tmp_path, day):
    """The registry's parquet files inside the log directory would be read as logs by the next run."""
    logs = tmp_path / "logs"
    logs.mkdir()
    day[0].write_parquet(logs / "part-0.parquet")
    err = _error_line(_run(tmp_path, logs, tmp_path / "o", "--registry", str(logs / "reg")))
    assert "--registry" in err and "is inside the input" in err
    assert sorted(p.name for p in logs.iterdir()) == ["part-0.parquet"] and not (tmp_path / "o").exists()


def test_out_holding_foreign_files_is_refused(tmp_path, day_file):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    err = _error_line(_run(tmp_path, day_file, out))
    assert "holds files clusterer did not write (notes.txt)" in err
    assert (out / "notes.txt").read_text() == "mine"


def test_mixed_or_damaged_set_is_refused_by_show_and_history(tmp_path, day_file, day):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(tmp_path, day_file, a).exit_code == 0
    other = tmp_path / "other.parquet"
    day[0].head(200).write_parquet(other)
    assert _run(tmp_path, other, b).exit_code == 0
    (a / "clusters.parquet").write_bytes((b / "clusters.parquet").read_bytes())  # new beside old
    assert "does not match manifest.json" in _error_line(runner.invoke(app, ["show", str(a)]))
    res = runner.invoke(app, ["history", "add", str(a), "--index", str(tmp_path / "h")])
    assert "does not match manifest.json" in _error_line(res)
    (b / "vectors.npy").unlink()
    res = runner.invoke(app, ["history", "add", str(b), "--index", str(tmp_path / "h")])
    assert "vectors.npy is missing" in _error_line(res)


def test_full_disk_during_write_keeps_the_previous_set(tmp_path, day_file):
    """A file-size limit makes every write past it fail as a full disk does (EFBIG / ENOSPC)."""
    out = tmp_path / "o"
    assert _run(tmp_path, day_file, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code = (  # the limit is set as the write stage starts: that stage is what this test is about
        "import resource, signal, sys\n"
        "from clusterer import result\n"
        "from clusterer.cli import app\n"
        "write = result.Result.write\n"
        "def full_disk_write(self, out):\n"
        "    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
        "    return write(self, out)\n"
        "result.Result.write = full_disk_write\n"
        f"sys.argv = ['clusterer', 'run', {str(day_file)!r}, '--out', {str(out)!r}, '--model', 'hashing', "
        f"'--cache-dir', 'none', '--seed', '1', '-q']\n"
        "app()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2, res.stderr
    assert "error: cannot write --out" in res.stderr and "Traceback" not in res.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if ".clusterer-" in p.name]  # no staging left behind
    clusterer.verify(out)


def test_error_for_input_that_is_not_a_table_or_paths():
    with pytest.raises(TypeError, match="logs must be a polars DataFrame"):
        clusterer.cluster(42)
    with pytest.raises(TypeError, match="unexpected keyword argument 'modle'"):
        clusterer.cluster(["x.parquet"], modle="static")
    with pytest.raises(ValueError, match="graph.k must be within"):
        clusterer.cluster(["x.parquet"], k=1)
    with pytest.raises(InputError, match="no such file"):
        clusterer.cluster(["does-not-exist.parquet"])


def test_assign_takes_the_reading_options_its_errors_name(tmp_path, day_file):
    """An input `assign` refuses names the option that reads it (`--fill-account`, `--new-prompt-ids`,
    `--timestamp-col`); `assign` takes them, as `run` does."""
    run, reg = tmp_path / "r", tmp_path / "reg"
    assert _run(tmp_path, day_file, run, "--registry", str(reg)).exit_code == 0
    df = pl.read_parquet(day_file).head(300)
    nulls = tmp_path / "nulls.parquet"
    df.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("account_id")).alias("account_id")
    ).write_parquet(nulls)
    dup = tmp_path / "dup.parquet"
    df.with_columns(pl.lit("x").alias("prompt_id")).write_parquet(dup)
    moved = tmp_path / "moved.parquet"
    df.rename({"timestamp": "ts"}).write_parquet(moved)
    for path, flag, extra in (
        (nulls, "--fill-account", ["unknown-account"]),
        (dup, "--new-prompt-ids", []),
        (moved, "--timestamp-col", ["ts"]),
    ):
        out = tmp_path / f"{path.stem}-a.parquet"
        res = runner.invoke(app, ["assign", str(path), "--registry", str(reg), "--out", str(out), "-q"])
        assert res.exit_code == 2 and flag in _error_line(res), res.output
        res = runner.invoke(app, ["assign", str(path), "--registry", str(reg), "--out", str(out), "-q", flag, *extra])
        assert res.exit_code == 0, res.output
        assert pl.read_parquet(out).height == 300
