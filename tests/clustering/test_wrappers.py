"""Short wrappers around whole payloads (clustering.wrappers and the batch run's wrappers stage)."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

from clusterer import api
from clusterer.clustering.wrappers import wrapper_groups
from clusterer.config import NormaliseConfig, SkeletonConfig
from clusterer.text.normalise import normalise
from clusterer.text.skeleton import build_skeletons, frequent_shingles

DATA = Path(__file__).resolve().parents[2] / "data"
WORDS = (
    "apple river garden window market engine planet silver forest music bridge candle winter harbor pencil "
    "mountain ocean castle rocket meadow lantern desert island thunder violin tiger coffee library painting "
    "village orbit crystal shadow feather marble compass journey festival puzzle station blanket harvest"
).split()


def _payload(rng: np.random.Generator, lo: int = 14, hi: int = 40) -> str:
    return " ".join(rng.choice(WORDS, int(rng.integers(lo, hi))))


def _groups(texts: list[str], accounts: list[str], edge_tokens: int = 8) -> np.ndarray:
    norm = normalise(pl.Series(texts), NormaliseConfig())
    sk = build_skeletons(norm.text, SkeletonConfig())
    acc = pl.Series(accounts).cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    labels = np.full(len(texts), -1, np.int64)
    return wrapper_groups(labels, labels < 0, norm.text, sk, acc, norm.key, 3, edge_tokens, 10)[0]


def test_a_one_line_wrapper_above_or_below_differing_payloads_is_one_group_per_wrapper():
    """A line of four words above 60 payloads and another below 40 (each prompt from its own account) give two
    groups, whatever a few re-worded copies add; a phrase that turns up mid-text as often as at an edge (a
    filler), an opening short prompts share (all edge), and one wrapper sent by three accounts make none."""
    rng = np.random.default_rng(3)
    texts, accounts, want = [], [], []
    for i in range(60):
        line = "Flashcards, markdown table:" if i % 10 else "flashcards, a markdown table:"
        tag = f"[req {rng.integers(1 << 30):x}] " if i % 3 == 0 else ""  # a request ID before some
        texts.append(f"{tag}{line}\n{_payload(rng)}")
        accounts.append(f"f{i}")
        want.append("top" if i % 10 else None)  # six re-worded copies share no shingle with the rest
    for i in range(40):
        texts.append(f"{_payload(rng)}\n\nTL;DR in five bullets:")
        accounts.append(f"t{i}")
        want.append("bottom")
    for i in range(60):  # a filler phrase, at the start or in the middle
        pay = _payload(rng).split()
        at = 0 if i % 2 else len(pay) // 2
        texts.append(" ".join(pay[:at] + ["keep", "it", "professional."] + pay[at:]))
        accounts.append(f"k{i}")
        want.append(None)
    for i in range(40):  # short questions: the whole prompt is its edge
        texts.append(f"what is the {' '.join(rng.choice(WORDS, 3))}?")
        accounts.append(f"q{i}")
        want.append(None)
    for i in range(30):  # three accounts
        texts.append(f"Rate this one, 1-10:\n{_payload(rng)}")
        accounts.append(f"r{i % 3}")
        want.append(None)
    groups = _groups(texts, accounts)
    want_arr = np.array([w or "" for w in want])
    for name in ("top", "bottom"):
        got = np.unique(groups[want_arr == name])
        assert len(got) == 1 and got[0] >= 0, name
    assert groups[want_arr == "top"][0] != groups[want_arr == "bottom"][0]
    assert (groups[want_arr == ""] == -1).all()
    # the whole rule needs the edge: a window of 1 token holds no three-word shingle
    assert (_groups(texts, accounts, edge_tokens=1) == -1).all()


def test_only_eligible_rows_are_grouped_and_a_family_holding_most_of_them_owns_the_line():
    """Rows a group may not take (a flagged family's) stay; an eligible family that holds most of the rows with
    the line has it as its own template, and no group forms; fewer than min_rows eligible rows form none."""
    rng = np.random.default_rng(4)
    texts = [f"Solve. Box the final answer.\n{_payload(rng)}" for _ in range(40)]
    texts += [_payload(rng, 3, 30) for _ in range(160)]  # other traffic (a shingle in 30% of a day is generic)
    norm = normalise(pl.Series(texts), NormaliseConfig())
    sk = build_skeletons(norm.text, SkeletonConfig())
    acc = np.arange(len(texts), dtype=np.int64)
    labels = np.full(len(texts), -1, np.int64)
    labels[:25] = 0

    def groups(eligible):
        return wrapper_groups(labels, eligible, norm.text, sk, acc, norm.key, 3, 8, 10)[0]

    got = groups(labels < 0)
    assert (got[:25] == -1).all() and (got[25:40] == 0).all() and (got[40:] == -1).all()
    assert (groups(np.ones(len(texts), bool)) == -1).all()  # family 0 holds 25 of the 40
    labels[:15] = 1  # two families, neither holding half: the line is a wrapper around both
    got = groups(np.ones(len(texts), bool))
    assert (got[:40] == 0).all() and (got[40:] == -1).all()
    labels[:35] = 0  # five eligible rows left: fewer than min_rows
    assert (groups(labels < 0) == -1).all()


def _day(rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The bundled sample day's ordinary prompts from aged accounts; 120 of its long prompts sent again by five
    of them each (popular prompts: their wording recurs over the day); 60 prompts opening "Write a python
    function to", each from another aged account; and a campaign: 30 fresh accounts that send nothing but one
    line (three wordings) above one of those popular prompts, each a different one."""
    sample = pl.read_parquet(DATA / "sample_day.parquet").join(
        pl.read_parquet(DATA / "sample_labels.parquet").select("prompt_id", "kind"), on="prompt_id"
    )
    ordinary = sample.filter(pl.col("kind") == "benign")
    long = ordinary.filter(pl.col("text").str.split(" ").list.len() >= 14)["text"].unique(maintain_order=True)
    popular = [long[int(j)] for j in rng.permutation(len(long))[:120]]
    start = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
    rows = []

    def add(text, acct, age_days, kind):
        rows.append(
            {
                "prompt_id": f"p{len(rows):05d}",
                "account_id": acct,
                "timestamp": start + dt.timedelta(seconds=int(rng.integers(86_400))),
                "text": text,
                "account_created_at": start - dt.timedelta(days=age_days),
                "kind": kind,
            }
        )

    for text, acct in ordinary.select("text", "account_id").iter_rows():
        add(text, f"u-{acct}", 700, "benign")
    for text in popular:
        for _ in range(5):
            add(text, f"v{int(rng.integers(400))}", 500, "benign")
    for a in range(60):
        add(f"Write a python function to {_payload(rng, 12, 30)}", f"v{a}", 500, "opening")
    for i, text in enumerate(popular):
        line = str(rng.choice(["Solve. Box the final answer.", "Solve. Box the last reply.", "solve. box the answer"]))
        add(f"{line}\n{text}", f"fresh{i % 30}", 2, "wrapper")
    df = pl.DataFrame(rows).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us", "UTC")), pl.col("account_created_at").cast(pl.Datetime("us", "UTC"))
    )
    kind = df["kind"].to_numpy()
    return df.drop("kind"), kind == "wrapper", kind == "opening"


def test_a_batch_run_flags_a_short_wrapper_campaign_and_leaves_an_ordinary_opening(tmp_path, fast_cfg):
    """The wrapper campaign's prompts embed as their payloads; the wrappers stage groups them by their first
    line and the decision flags the group (one campaign ID); the opening aged users share is left unflagged.
    With ``wrapper_edge_tokens`` 0 the campaign is mostly missed."""
    traffic, wrapper, opening = _day(np.random.default_rng(9))
    traffic.write_parquet(tmp_path / "day.parquet")
    got = {}
    for name, over in (("on", {}), ("off", {"cluster.wrapper_edge_tokens": 0})):
        api.run([tmp_path / "day.parquet"], tmp_path / name, fast_cfg(**over))
        out = pl.read_parquet(tmp_path / name / "assignments.parquet")
        assert out["prompt_id"].to_list() == traffic["prompt_id"].to_list()
        got[name] = out
    on, off = got["on"], got["off"]
    flagged = on["flagged"].to_numpy()
    assert flagged[wrapper].mean() > 0.95
    assert on.filter(pl.Series(wrapper))["campaign_id"].drop_nulls().n_unique() == 1
    assert not flagged[~wrapper].any()
    assert not flagged[opening].any()
    assert off["flagged"].to_numpy()[wrapper].mean() < 0.5
    manifest = json.loads((tmp_path / "on" / "manifest.json").read_text())["families"]
    assert manifest["wrapper_groups"] >= 1 and manifest["wrapper_rows"] >= wrapper.sum() * 0.95
    off_manifest = json.loads((tmp_path / "off" / "manifest.json").read_text())["families"]
    assert off_manifest["wrapper_groups"] == 0 and off_manifest["wrapper_rows"] == 0
    clusters = pl.read_parquet(tmp_path / "on" / "clusters.parquet").filter(pl.col("flagged"))
    assert clusters.height >= 1 and clusters["template"].str.contains("solve. box the").any()


def test_a_shingle_whose_other_holders_chose_another_is_checked_again_on_what_it_kept():
    """ "beta gamma delta" is at the edge of 52 prompts from 41 accounts, but 40 of them hold the more held
    "alpha beta gamma" and go there: it keeps 12 prompts of one account, all in one family, and forms no group."""
    rng = np.random.default_rng(6)
    texts, accounts = [], []
    for i in range(40):
        texts.append(f"alpha beta gamma delta. {_payload(rng)}")
        accounts.append(f"a{i}")
    for i in range(30):
        texts.append(f"alpha beta gamma omega. {_payload(rng)}")
        accounts.append(f"b{i}")
    for _ in range(12):
        texts.append(f"zeta beta gamma delta. {_payload(rng)}")
        accounts.append("z")
    texts += [_payload(rng, 3, 30) for _ in range(200)]
    accounts += [f"u{i}" for i in range(200)]
    norm = normalise(pl.Series(texts), NormaliseConfig())
    sk = build_skeletons(norm.text, SkeletonConfig())
    acc = pl.Series(accounts).cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    labels = np.full(len(texts), -1, np.int64)
    labels[70:82] = 0  # one family, not flagged
    got = wrapper_groups(labels, np.ones(len(texts), bool), norm.text, sk, acc, norm.key, 3, 8, 10)[0]
    assert (got[:70] >= 0).all() and len(np.unique(got[:70])) == 1
    assert (got[70:] == -1).all()


def test_a_group_on_a_flagged_familys_own_line_from_its_senders_is_returned_with_that_family():
    """Prompts of a flagged family's one-line wrapper left as noise, sent by the family's own accounts, group on
    its line, and the group says whose line it is; without owners it is a group of its own; sent by other
    accounts (another campaign sharing a line the family's paraphrases use), a group of their own."""
    rng = np.random.default_rng(8)
    texts = [f"Solve. Box the final answer.\n{_payload(rng)}" for _ in range(60)]
    texts += [_payload(rng, 3, 30) for _ in range(200)]
    norm = normalise(pl.Series(texts), NormaliseConfig())
    sk = build_skeletons(norm.text, SkeletonConfig())
    own_senders = np.concatenate([np.arange(30), np.arange(30), 100 + np.arange(200)]).astype(np.int64)
    labels = np.full(len(texts), -1, np.int64)
    labels[:30] = 3  # the flagged family: not eligible
    family = np.concatenate([sk.hashes[sk.indptr[r] : sk.indptr[r + 1]] for r in range(30)])
    own = frequent_shingles(family, 30)
    owners = pl.DataFrame({"h": own, "owner": np.full(len(own), 3, np.int64)})

    def run(acc, owners=None):
        return wrapper_groups(labels, labels < 0, norm.text, sk, acc, norm.key, 3, 8, 10, owners=owners)

    groups, owned = run(own_senders, owners)
    assert (groups[30:60] == 0).all() and (groups[:30] == -1).all() and (groups[60:] == -1).all()
    assert owned.tolist() == [3]
    groups, owned = run(own_senders)
    assert (groups[30:60] == 0).all() and owned.tolist() == [-1]
    others = np.arange(len(texts), dtype=np.int64)  # every prompt its own account
    groups, owned = run(others, owners)
    assert (groups[30:60] == 0).all() and owned.tolist() == [-1]
    third = own_senders.copy()
    third[30:60] = np.where(np.arange(30) < 9, np.arange(30), 1000 + np.arange(30))  # 9 of 30 from its senders
    assert run(third, owners)[1].tolist() == [-1]
    third[30:60] = np.where(np.arange(30) < 11, np.arange(30), 1000 + np.arange(30))  # 11 of 30
    assert run(third, owners)[1].tolist() == [3]


def test_a_line_several_flagged_families_hold_groups_and_joins_the_one_whose_senders_sent_it():
    """A wrapper re-worded per prompt can be flagged once per re-wording ("Note: …", "Thanks. …"), so several
    flagged families hold its line. Its left-over prompts still form one group: it joins the family whose
    senders sent the most of it, or none when no family's senders sent a third of it."""
    rng = np.random.default_rng(9)
    texts = [f"Note: Solve. Box the final answer.\n{_payload(rng)}" for _ in range(30)]
    texts += [f"Thanks. Solve. Box the final answer.\n{_payload(rng)}" for _ in range(30)]
    texts += [f"Solve. Box the final answer.\n{_payload(rng)}" for _ in range(40)]
    texts += [_payload(rng, 3, 30) for _ in range(400)]  # the line in 20% of the day (skeleton max_df)
    norm = normalise(pl.Series(texts), NormaliseConfig())
    sk = build_skeletons(norm.text, SkeletonConfig())
    labels = np.full(len(texts), -1, np.int64)
    labels[:30], labels[30:60] = 4, 7  # two flagged families, one per re-wording: not eligible
    owners = []
    for fam, rows in ((4, range(30)), (7, range(30, 60))):
        own = frequent_shingles(np.concatenate([sk.hashes[sk.indptr[r] : sk.indptr[r + 1]] for r in rows]), 30)
        owners.append(pl.DataFrame({"h": own, "owner": np.full(len(own), fam, np.int64)}))
    both = pl.concat(owners)
    line = set(both.filter(pl.col("owner") == 4)["h"]) & set(both.filter(pl.col("owner") == 7)["h"])
    assert line  # the line is held by both families

    def run(acc):
        return wrapper_groups(labels, labels < 0, norm.text, sk, acc, norm.key, 3, 8, 10, owners=both)

    acc = np.arange(len(texts), dtype=np.int64)  # one account per prompt: no family's senders
    groups, owned = run(acc)
    assert (groups[60:100] == 0).all() and (groups[:60] == -1).all() and (groups[100:] == -1).all()
    assert owned.tolist() == [-1]
    acc[60:80] = np.arange(30, 50)  # half the left-overs from the second family's senders
    assert run(acc)[1].tolist() == [7]
    acc[80:100] = np.arange(20)  # and half from the first's, which sent fewer of it: still the second's
    acc[60:62] = 1000 + np.arange(2)
    assert run(acc)[1].tolist() == [4]


def test_payloads_sent_several_times_over_still_group_while_copies_of_a_few_prompts_do_not():
    """On a day of millions a payload pool is sent several times over: a wrapper around 40 payloads, each sent
    five times (200 prompts, 20% distinct texts), is still a group. An opening that heads 100 copies of one
    popular prompt and 11 re-wordings of it (111 prompts from 111 accounts) is not, however many accounts send
    it: no text may be more than a tenth of a group; nor is one that heads four prompts sent 30 times each (it
    needs eight different texts)."""
    rng = np.random.default_rng(12)
    payloads = [_payload(rng) for _ in range(40)]
    popular = [f"Act as a chess rival and {_payload(rng, 14, 16)}" for _ in range(12)]
    four = [f"Pretend you are a pirate captain, {_payload(rng, 14, 16)}" for _ in range(4)]
    texts = [f"Solve. Box the final answer.\n{payloads[i % 40]}" for i in range(200)]
    texts += [popular[0]] * 100 + popular[1:] + [four[i % 4] for i in range(120)]
    texts += [_payload(rng, 3, 30) for _ in range(900)]
    got = _groups(texts, [f"u{i}" for i in range(len(texts))])
    assert len(set(got[:200].tolist())) == 1 and got[0] >= 0
    assert (got[200:] == -1).all()


def test_a_stream_window_groups_a_short_wrapper_and_the_campaign_keeps_one_id(tmp_path):
    """With ``wrappers_in_windows``, streamed in two 12-hour windows, each window groups the wrapper campaign's
    prompts by their first line and flags them, under one campaign ID for the day; the opening aged users share
    stays unflagged. Without it (the default) the windows miss most of the campaign."""
    from typer.testing import CliRunner

    from clusterer.cli import app

    traffic, wrapper, opening = _day(np.random.default_rng(9))
    traffic.write_parquet(tmp_path / "day.parquet")
    got = {}
    for name, on in (("on", "true"), ("off", "false")):
        (tmp_path / f"{name}.toml").write_text(f"[cluster]\nwrappers_in_windows = {on}\n")
        args = ["stream", str(tmp_path / "day.parquet"), "--out", str(tmp_path / name), "--window", "12h"]
        args += ["--registry", str(tmp_path / f"reg-{name}"), "--config", str(tmp_path / f"{name}.toml")]
        args += ["--model", "hashing", "--device", "cpu", "-q", "--cache-dir", str(tmp_path / "cache")]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        state = json.loads((tmp_path / name / "stream.json").read_text())
        assert len(state["windows"]) == 2
        parts = [pl.read_parquet(tmp_path / name / w["dir"] / "assignments.parquet") for w in state["windows"]]
        out = pl.concat(parts, how="diagonal_relaxed")
        got[name] = traffic.select("prompt_id").join(out, on="prompt_id", how="left", maintain_order="left")
        assert got[name]["flagged"].null_count() == 0  # every prompt in one window
    on = got["on"]
    flagged = on["flagged"].to_numpy()
    assert flagged[wrapper].mean() > 0.9
    assert on.filter(pl.Series(wrapper) & pl.col("flagged"))["campaign_id"].n_unique() == 1
    assert not flagged[opening].any()
    assert got["off"]["flagged"].to_numpy()[wrapper].mean() < 0.5
