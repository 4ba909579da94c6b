"""The measuring scripts a user runs from ``scripts/`` (loaded from the checkout, not installed)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest

from clusterer import synth

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write(tmp_path: Path, name: str, seed: int, day: int) -> Path:
    traffic, labels = synth.fake_day(seed=seed, day=day)
    traffic = traffic.with_columns(pl.lit("org").alias("org_id"))
    d = tmp_path / name
    d.mkdir()
    traffic.write_parquet(d / "traffic.parquet")
    labels.write_parquet(d / "labels.parquet")
    return d


def test_mixed_days_keep_every_prompt_on_one_date_and_nothing_collides(tmp_path):
    mix_days = _script("mix_days")
    a, b = _write(tmp_path, "a", seed=1, day=1), _write(tmp_path, "b", seed=1, day=7)  # same IDs, other dates
    ta, tb = pl.read_parquet(a / "traffic.parquet"), pl.read_parquet(b / "traffic.parquet")
    traffic, labels = mix_days.mix([a, b])
    assert traffic.height == labels.height == ta.height + tb.height
    assert traffic["prompt_id"].n_unique() == traffic.height
    assert set(traffic["prompt_id"]) == set(labels["prompt_id"])
    # the two sources' accounts and campaigns stay apart, though the inputs share their names
    assert traffic["account_id"].n_unique() == ta["account_id"].n_unique() + tb["account_id"].n_unique()
    assert traffic["org_id"].n_unique() == 2
    camp = labels.filter(pl.col("kind") == "campaign")["label"]
    assert (
        camp.n_unique()
        == 2
        * ta.join(pl.read_parquet(a / "labels.parquet"), on="prompt_id")
        .filter(pl.col("kind") == "campaign")["label"]
        .n_unique()
    )
    # one date, times of day kept, in time order
    assert traffic["timestamp"].dt.date().unique().to_list() == [dt.date(2026, 11, 1)]
    moved = traffic.filter(pl.col("prompt_id").str.starts_with("s1_")).sort("prompt_id")["timestamp"]
    assert (moved.dt.time() == tb.sort("prompt_id")["timestamp"].dt.time()).all()
    assert traffic["timestamp"].is_sorted()
    # a sample keeps labels and traffic aligned
    part_t, part_l = mix_days.mix([a, b], fraction=0.5, seed=2)
    assert 0 < part_t.height < traffic.height and set(part_t["prompt_id"]) == set(part_l["prompt_id"])


def test_a_family_file_replaces_the_generators_templates_customers_and_topics(tmp_path):
    gen = _script("gen_scenario")
    spec = {
        "families": [
            {
                "name": "t_outline",
                "payload": "document",
                "variants": [["Outline the text.", ["Use headings.", "Keep it short."], "{s}\n{i}\n\n{p}"]],
            },
            {
                "name": "t_solve",
                "payload": "math",
                "days": [1, 1],
                "variants": [
                    ["Solve it.", ["Show steps."], "{s} {i}\nTask: {p}"],
                    ["Résous-le.", ["Montre les étapes."], "{p}\n---\n{s} {i}"],
                ],
            },
        ],
        "legit": [["t_legit_bank", "You answer for Bank X. {p}", "question"]],
        "trending": [["t_trend_storm", ["is the storm coming {w}", "storm shelter near me"]]],
    }
    path = tmp_path / "fams.json"
    path.write_text(json.dumps(spec))
    fam = gen.read_family_file(path)
    df, meta = gen.generate(3000, 1, 5, True, None, frozenset({"persona"}), family_file=fam)
    assert meta["families"] == "fams"
    groups = dict(df.group_by("kind").agg(pl.col("group").unique()).iter_rows())
    assert set(groups["campaign"]) == {"t_outline", "t_solve", gen.HOLDOUT_BEHAVIOURS["persona"]["name"]}
    assert set(groups["legit_templated"]) == {"t_legit_bank"} and set(groups["trending"]) == {"t_trend_storm"}
    solve = df.filter(pl.col("group") == "t_solve")["text"]
    assert solve.str.contains("Task: ").any() and solve.str.contains("\n---\n").any()  # both variants sent
    # a day outside a family's days leaves it out
    df2, _ = gen.generate(3000, 2, 5, True, None, family_file=fam)
    assert "t_solve" not in set(df2["group"])
    # a bad layout or payload kind is refused when read, naming the family
    spec["families"][0]["variants"][0][2] = "{s} {i} {payload}"
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="t_outline.*payload"):
        gen.read_family_file(path)
    spec["families"][0]["variants"][0][2] = "{s} {i} {p}"
    spec["families"][1]["payload"] = "poetry"
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="t_solve"):
        gen.read_family_file(path)


@pytest.mark.parametrize("name", ["families_fresh.json", "families_fresh2.json"])
def test_the_shipped_blind_family_sets_generate_every_family_on_its_days(name):
    """The blind family sets in ``scripts/`` stay readable by the generator, and a day sends every family whose
    days include it, every legitimate customer and every trending topic the file names."""
    gen = _script("gen_scenario")
    path = SCRIPTS / name
    spec = json.loads(path.read_text(encoding="utf-8"))
    fam = gen.read_family_file(path)
    df, _ = gen.generate(6000, 1, 7, True, None, family_file=fam)
    sent = set(df["group"].unique())
    first_day = {f["name"] for f in spec["families"] if f.get("days", [1, 1])[0] <= 1 <= f.get("days", [1, 1])[1]}
    assert first_day and first_day <= sent
    assert {x[0] for x in spec.get("legit", [])} <= sent and {x[0] for x in spec.get("trending", [])} <= sent


def test_eval_stream_pairs_ids_one_to_one_and_reads_them_through_merged_into(tmp_path, monkeypatch, capsys):
    """Two windows name one campaign "a" then "b" (the second window found them one and merged a into b): as
    written, half its prompts carry the batch ID's pair; read through the registry's ``merged_into``, all."""
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    stream, reg, batch = tmp_path / "s", tmp_path / "reg", tmp_path / "b"
    for d in (stream / "w0", stream / "w1", reg, batch):
        d.mkdir(parents=True)
    ids = [f"p{i}" for i in range(8)]
    times = [t0 + dt.timedelta(minutes=10 * i) for i in range(4)] + [
        t0 + dt.timedelta(hours=1, minutes=10 * i) for i in range(4)
    ]
    campaign = ["a", "a", "a", None, "b", "b", "b", None]  # p3, p7: ordinary prompts
    for w, rows in (("w0", slice(0, 4)), ("w1", slice(4, 8))):
        pl.DataFrame(
            {
                "prompt_id": ids[rows],
                "timestamp": times[rows],
                "campaign_id": campaign[rows],
                "flagged": [c is not None for c in campaign[rows]],
            }
        ).write_parquet(stream / w / "assignments.parquet")
    state = {
        "every_s": 3600,
        "registry": str(reg),
        "windows": [
            {"index": i, "dir": w, "registry_bytes": 1, "registry_campaigns": 2, "seconds": 1.0}
            for i, w in enumerate(("w0", "w1"))
        ],
    }
    (stream / "stream.json").write_text(json.dumps(state))
    pl.DataFrame({"campaign_id": ["a", "b"], "merged_into": ["b", None]}).write_parquet(reg / "campaigns.parquet")
    kind = ["benign" if c is None else "campaign" for c in campaign]
    labels = pl.DataFrame({"prompt_id": ids, "label": [None if c is None else "camp" for c in campaign], "kind": kind})
    labels.write_parquet(tmp_path / "labels.parquet")
    pl.DataFrame(
        {
            "prompt_id": ids,
            "campaign_id": [None if c is None else "X" for c in campaign],
            "flagged": [c is not None for c in campaign],
        }
    ).write_parquet(batch / "assignments.parquet")
    mod = _script("eval_stream")
    args = ["eval_stream", "--labels", str(tmp_path / "labels.parquet"), "--stream", str(stream), "--batch", str(batch)]
    monkeypatch.setattr("sys.argv", args)
    mod.main()
    out = json.loads(capsys.readouterr().out)
    assert out["batch_id_agreement"] == 0.5 and out["batch_id_agreement_resolved"] == 1.0
    assert out["stream_ids_per_campaign"] == {"camp": 2}
    assert out["flagged_within_two_windows"] == 1.0 and out["prompt_precision"] == 1.0
    # a batch run of another day (no prompt in common) is refused by name, not scored as no agreement
    pl.DataFrame({"prompt_id": ["q0"], "campaign_id": ["X"], "flagged": [True]}).write_parquet(
        batch / "assignments.parquet"
    )
    with pytest.raises(SystemExit):
        mod.main()
    err = capsys.readouterr().err
    assert "8 of the 8 labelled prompts are not in its assignments" in err and "p0" in err
