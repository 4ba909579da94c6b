"""Fitting the campaign score's weights to verdicts (clusterer calibrate)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from clusterer.campaigns import calibrate as cal
from clusterer.cli import app
from clusterer.config import SCORE_TERMS, CampaignConfig
from clusterer.errors import InputError


def _run(tmp_path, name, seed, n=400):
    """A fake run directory: families with score terms; campaigns have a varied slot, many fresh accounts,
    while customers have one organisation and shared prompts are pasted once by old accounts."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["campaign", "customer", "shared", "background"], n, p=[0.15, 0.1, 0.25, 0.5])
    t = {f"term_{x}": rng.uniform(-0.3, 0.3, n) for x in SCORE_TERMS}
    camp, cust, shared = kind == "campaign", kind == "customer", kind == "shared"
    t["term_variety"] = np.where(camp | cust, rng.uniform(0.6, 1.0, n), rng.uniform(-1.0, 0.3, n))
    t["term_spread"] = np.where(camp | cust | shared, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.4, n))
    t["term_fresh"] = np.where(camp, rng.uniform(0.3, 1.0, n), rng.uniform(-1.0, -0.3, n))
    t["term_one_org"] = np.where(cust, -1.0, 0.0)
    df = pl.DataFrame(
        {"cluster_id": np.arange(n), "size": rng.integers(10, 500, n), "effective_accounts": np.full(n, 20.0), **t}
    )
    run = tmp_path / name
    run.mkdir()
    df.write_parquet(run / "clusters.parquet")
    verdicts = pl.DataFrame(
        {
            "run": [name] * n,
            "cluster_id": np.arange(n),
            "verdict": np.where(camp, "confirmed", "rejected"),
            "group": kind,
        }
    )
    path = tmp_path / f"{name}.csv"
    verdicts.write_csv(path)
    return path


def test_fit_respects_bounds_and_improves_a_poor_config(tmp_path):
    train = cal.load_verdicts([_run(tmp_path, "day1", 1)])
    test = cal.load_verdicts([_run(tmp_path, "day2", 2)])
    fitted = cal.fit_weights(train, max_weight=3.0)
    assert cal.check_weights(fitted) == []  # no term flags or (if evadable) vetoes alone
    assert all(0.0 <= fitted[f"w_{t}"] <= 3.0 for t in SCORE_TERMS)
    poor = {"bias": -0.3, **{f"w_{t}": (0.4 if t == "spread" else 0.2) for t in SCORE_TERMS}}  # flags shared prompts
    before, after = cal.evaluate(test, poor), cal.evaluate(test, fitted)
    assert after["prompts_precision"] > before["prompts_precision"]
    assert after["prompts_recall"] >= 0.9
    # a TOML that a run reads back
    text = cal.to_toml(fitted, "test")
    import tomllib

    cfg = CampaignConfig(**tomllib.loads(text)["campaign"])
    assert cfg.bias == fitted["bias"]


def test_operating_point_lowers_the_bias_until_groups_are_clean(tmp_path):
    v = cal.load_verdicts([_run(tmp_path, "day1", 3)])
    loose = {"bias": -1.05, **{f"w_{t}": 1.0 for t in SCORE_TERMS}}
    tight = cal.operating_point(v, loose, max_fpr=0.0, min_recall=0.5)
    assert tight["bias"] < loose["bias"]
    assert cal.evaluate(v, tight)["prompts_precision"] >= cal.evaluate(v, loose)["prompts_precision"]


def test_cli_writes_a_config_and_reports_before_after(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            str(_run(tmp_path, "day1", 4)),
            "--test",
            str(_run(tmp_path, "day2", 5)),
            "--out",
            str(tmp_path / "campaign.toml"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "before" in res.output and "after" in res.output and "test" in res.output
    assert "[campaign]" in (tmp_path / "campaign.toml").read_text()


def test_bad_verdicts_are_clear_errors(tmp_path):
    path = _run(tmp_path, "day1", 6)
    bad = tmp_path / "bad.csv"
    pl.read_csv(path).with_columns(pl.lit("maybe").alias("verdict")).write_csv(bad)
    with pytest.raises(InputError, match="column 'verdict' must be confirmed or rejected"):
        cal.load_verdicts([bad])
    missing = tmp_path / "missing.csv"
    pl.read_csv(path).drop("run").write_csv(missing)
    with pytest.raises(InputError, match="needs columns run, verdict"):
        cal.load_verdicts([missing])
    unknown = tmp_path / "unknown.csv"
    pl.read_csv(path).with_columns(pl.col("cluster_id") + 10_000).write_csv(unknown)
    with pytest.raises(InputError, match="not found"):
        cal.load_verdicts([unknown])
    res = CliRunner().invoke(app, ["calibrate", str(bad), "--out", str(tmp_path / "x.toml")])
    assert res.exit_code == 2 and "verdict" in res.output


def test_config_refuses_a_term_that_could_flag_alone():
    with pytest.raises(Exception, match="no single evidence term may flag a family alone"):
        CampaignConfig(bias=-2.0, w_variety=3.0)


def test_fit_only_fits_the_named_terms_and_keeps_the_rest(tmp_path):
    train = cal.load_verdicts([_run(tmp_path, "day1", 1)])
    # a network term that tells campaigns apart in these verdicts
    camp = train.label
    train.terms[:, SCORE_TERMS.index("payment")] = np.where(camp, 0.8, 0.0)
    base = cal.current_weights(CampaignConfig(w_payment=0.0))
    fitted = cal.fit_weights(train, only=("payment", "rotation"), base=base)
    assert fitted["bias"] == base["bias"]
    assert all(fitted[f"w_{t}"] == base[f"w_{t}"] for t in SCORE_TERMS if t not in ("payment", "rotation"))
    assert fitted["w_payment"] > 0.5 and cal.check_weights(fitted) == []
    with pytest.raises(InputError, match="unknown term"):
        cal.fit_weights(train, only=("bogus",), base=base)
