"""Flagged families joined by the scaffold lines they lend each other (clusterer.clustering.lines)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from clusterer.clustering import lines

from .test_families import _day as _traffic_day
from .test_families import _families

A_CORE, B_CORE, C_CORE = list(range(100, 112)), list(range(200, 212)), list(range(300, 312))
LENT = B_CORE[:8]  # a line of B's scaffold: eight shingles


def _skeletons(rows):
    """(labels, skeletons) from [(label, [shingle ids]), ...] (label −1: a row of no group)."""
    labels = np.array([g for g, _ in rows], np.int64)
    sets = [np.unique(np.array(r, np.uint64)) for _, r in rows]
    indptr = np.r_[0, np.cumsum([len(s) for s in sets])].astype(np.int64)
    return labels, SimpleNamespace(indptr=indptr, hashes=np.concatenate(sets))


def _day(borrowed=LENT, noise=()):
    """Groups 0, 1, 2 of 40 rows, each around its own core with a payload word per row; 30% of group 0's rows
    carry ``borrowed``; ``noise``: rows of no group."""
    rows = [(0, A_CORE + [1000 + i] + (borrowed if i % 10 < 3 else [])) for i in range(40)]
    rows += [(1, B_CORE + [2000 + i]) for i in range(40)]
    rows += [(2, C_CORE + [3000 + i]) for i in range(40)]
    return _skeletons(rows + [(-1, r) for r in noise])


def _join(labels, sk, flagged=(True, True, True)):
    # here each template group is its own family
    return lines.join_flagged_variants(labels, labels, np.array(flagged), sk, 0.5)


def test_flagged_families_that_lend_each_other_a_line_are_joined():
    labels, sk = _day()
    lent = lines.lent_shingles(labels, sk)
    assert lent.rows() == [(0, 1, 8)]  # group 1 lends eight shingles to group 0, nothing else
    joined, merges = _join(labels, sk)
    assert merges == 1 and joined.tolist() == [0, 0, 2]
    # a line in 60% of the lender's members (paraphrase drops it from the rest) is still its core
    rows = [(0, A_CORE + [1000 + i] + (LENT if i % 10 < 3 else [])) for i in range(40)]
    rows += [(1, [x for x in B_CORE if i % 10 < 6 or x not in LENT] + [2000 + i]) for i in range(40)]
    assert lines.lent_shingles(*_skeletons(rows)).rows() == [(0, 1, 8)]


def test_nothing_joins_on_weak_shared_or_common_lines_or_unflagged_families():
    # four lent shingles are 0.4 of full evidence: below family_min_sim
    assert _join(*_day(B_CORE[:4]))[1] == 0
    # text the day holds widely is nobody's line: 200 ordinary rows carry it too
    labels, sk = _day(noise=[LENT + [5000 + i] for i in range(200)])
    assert lines.lent_shingles(labels, sk).height == 0 and _join(labels, sk)[1] == 0
    # a part both groups hold in most members is template evidence (the family stages'), not a borrowed line
    rows = [(0, A_CORE + LENT + [1000 + i]) for i in range(40)] + [(1, B_CORE + [2000 + i]) for i in range(40)]
    assert lines.lent_shingles(*_skeletons(rows)).height == 0
    # a shingle in the cores of more groups than LINE_MAX_LENDERS is generic: it proposes no pair, even where
    # (as here: a large borrower, small lenders) the day's holders would not rule it out
    rows = [(0, A_CORE + [1000 + i] + (LENT if i % 10 < 3 else [])) for i in range(400)]
    rows += [
        (g, [10_000 * g + j for j in range(6)] + LENT + [50_000 + 100 * g + i]) for g in range(1, 10) for i in range(5)
    ]
    labels, sk = _skeletons(rows)
    assert lines.lent_shingles(labels, sk).height == 0
    saved = lines.LINE_MAX_LENDERS
    try:
        lines.LINE_MAX_LENDERS = 9
        assert lines.lent_shingles(labels, sk).height == 9
    finally:
        lines.LINE_MAX_LENDERS = saved
    # fewer than LINE_MIN_MEMBERS carriers are no line
    rows = [(0, A_CORE + [1000 + i] + (LENT if i < 4 else [])) for i in range(12)]
    rows += [(1, B_CORE + [2000 + i]) for i in range(40)]
    assert lines.lent_shingles(*_skeletons(rows)).height == 0
    # an ordinary family lends its line to a flagged one, or the other way: not joined (the decision came first)
    labels, sk = _day()
    assert _join(labels, sk, (True, False, True))[1] == 0 and _join(labels, sk, (False, True, True))[1] == 0
    # one family, or no shingles: nothing to do
    labels, sk = _skeletons([(0, A_CORE) for _ in range(10)])
    joined, merges = _join(labels, sk, (True,))
    assert merges == 0 and joined.tolist() == [0]


def test_a_line_brought_in_by_the_lenders_own_prompts_is_not_borrowed():
    # group 0 took in 12 of B's prompts (B's whole scaffold, none of A's): it holds B's line through them
    rows = [(0, A_CORE + [1000 + i]) for i in range(28)] + [(0, B_CORE + [1100 + i]) for i in range(12)]
    rows += [(1, B_CORE + [2000 + i]) for i in range(40)]
    labels, sk = _skeletons(rows)
    assert lines.lent_shingles(labels, sk).height == 0
    # the same share carried by A's own prompts is a borrowed line
    rows = [(0, A_CORE + [1000 + i] + (LENT if i < 12 else [])) for i in range(40)]
    rows += [(1, B_CORE + [2000 + i]) for i in range(40)]
    assert lines.lent_shingles(*_skeletons(rows)).rows() == [(0, 1, 8)]


def test_a_template_group_that_is_a_sliver_of_its_family_does_not_speak_for_it():
    # family 0 = group 0 (a variant borrowing group 1's line) plus group 2, 400 rows of its own: group 0 is
    # 40 / 440 < LINE_MIN_PART of its family
    rows = [(0, A_CORE + [1000 + i] + (LENT if i % 10 < 3 else [])) for i in range(40)]
    rows += [(1, B_CORE + [2000 + i]) for i in range(40)]
    rows += [(2, C_CORE + [3000 + i]) for i in range(400)]
    groups, sk = _skeletons(rows)
    families = np.where(groups == 1, 1, 0)
    assert lines.lent_shingles(groups, sk).rows() == [(0, 1, 8)]
    assert lines.join_flagged_variants(families, groups, np.array([True, True]), sk, 0.5)[1] == 0
    # group 2 at 200 rows: group 0 is 40 / 240 of its family, enough
    rows = rows[:280]
    groups, sk = _skeletons(rows)
    families = np.where(groups == 1, 1, 0)
    assert lines.join_flagged_variants(families, groups, np.array([True, True]), sk, 0.5)[1] == 1


def test_a_family_of_several_template_groups_joins_through_any_of_them():
    # family 0 holds template groups 0 and 2; group 2 borrows group 1's line; family 1 is group 1
    labels, sk = _day()
    groups = np.where(labels == 0, 2, np.where(labels == 2, 0, labels))  # group 2's rows borrow
    families = np.where(groups == 1, 1, 0)
    joined, merges = lines.join_flagged_variants(families, groups, np.array([True, True]), sk, 0.5)
    assert merges == 1 and joined.tolist() == [0, 0]
    # a family row without a template group (a stream window attaches rows by the campaign they carry) is left out
    groups[0] = -1
    joined, merges = lines.join_flagged_variants(families, groups, np.array([True, True]), sk, 0.5)
    assert merges == 1 and joined.tolist() == [0, 0]


VARIANT_A = (
    "Write a detailed summary of the report that follows for the quarterly board pack.\n"
    "Keep every figure exactly as given in the source.\nMark each risk with a severity from one to five.\n\n{p}"
)
VARIANT_B = (
    "Digest mode on. Headline first, findings next, nothing else.\nNo adjectives at all, plain verbs only please."
    "\n\nMaterial: {p}"
)
BORROWED = "Keep every figure exactly as given in the source."


def _borrowing_day():
    """Two English wordings of one job from two account pools without organisations; a third of B's prompts
    carry a line of A's scaffold. Returns (traffic, labels)."""
    b_borrowing = VARIANT_B.replace("\n\nMaterial:", "\n" + BORROWED + "\n\nMaterial:")
    variants = [(VARIANT_A, "pool-a", "digest", "op", (0, 24)), (VARIANT_B, "pool-b", "digest", "op", (0, 24))]
    traffic, labels = _traffic_day(variants, n_per=90, orgs=False)
    texts = [
        b_borrowing.format(p=t.split("Material: ", 1)[1]) if t.startswith("Digest mode on.") and i % 3 == 0 else t
        for i, t in enumerate(traffic["text"].to_list())
    ]
    return traffic.with_columns(pl.Series("text", texts)), labels


@pytest.mark.slow
def test_two_reworded_variants_that_borrow_a_line_come_out_as_one_campaign(tmp_path, fast_cfg):
    # nothing but the line a third of B's prompts borrow from A ties the two variants
    traffic, labels = _borrowing_day()
    camp = np.array([x is not None for x in labels])
    out = _families(tmp_path / "joined", traffic, fast_cfg())
    assert len(set(out[camp].tolist())) == 1 and (out[camp] >= 0).all()
    manifest = json.loads((tmp_path / "joined" / "out" / "manifest.json").read_text())
    assert manifest["families"]["line_joins"] == 1
    flagged = pl.read_parquet(tmp_path / "joined" / "out" / "assignments.parquet")["flagged"].to_numpy()
    # off, the two variants are two flagged families, and exactly the same prompts are flagged
    out = _families(tmp_path / "apart", traffic, fast_cfg(**{"cluster.join_variants": False}))
    assert len(set(out[camp].tolist())) == 2
    assert (pl.read_parquet(tmp_path / "apart" / "out" / "assignments.parquet")["flagged"].to_numpy() == flagged).all()


@pytest.mark.slow
def test_a_join_that_would_change_a_flag_is_not_kept(tmp_path, fast_cfg, monkeypatch):
    import dataclasses

    from clusterer.run import stages

    traffic, labels = _borrowing_day()
    real = stages.campaigns_stage
    calls = []

    def second_decision_differs(*args, **kw):
        camp = real(*args, **kw)
        calls.append(1)
        if len(calls) == 2:  # the decision over the joined families: one prompt's flag turned
            flags = camp.decisions.prompt_flagged.copy()
            flags[0] = not flags[0]
            camp = dataclasses.replace(camp, decisions=dataclasses.replace(camp.decisions, prompt_flagged=flags))
        return camp

    monkeypatch.setattr(stages, "campaigns_stage", second_decision_differs)
    out = _families(tmp_path / "kept_apart", traffic, fast_cfg())
    assert len(calls) == 2  # the join was tried
    camp = np.array([x is not None for x in labels])
    assert len(set(out[camp].tolist())) == 2
    manifest = json.loads((tmp_path / "kept_apart" / "out" / "manifest.json").read_text())
    assert manifest["families"]["line_joins"] == 0


def test_campaigns_of_a_stream_window_that_lend_each_other_a_line_are_named_as_one():
    # each template group is its own flagged family here; families 0 and 1 lend a line, family 2 is apart
    labels, sk = _day()
    assert lines.lent_between_campaigns(labels, labels, {0: "cmp-a", 1: "cmp-b", 2: "cmp-c"}, sk, 0.5) == [
        ["cmp-a", "cmp-b"]
    ]
    # two families already of one campaign: nothing left to name as one
    assert lines.lent_between_campaigns(labels, labels, {0: "cmp-a", 1: "cmp-a", 2: "cmp-c"}, sk, 0.5) == []
    # an unflagged family (not in campaign_of) lends nothing, and a weak line (four shingles) joins nothing
    assert lines.lent_between_campaigns(labels, labels, {0: "cmp-a", 2: "cmp-c"}, sk, 0.5) == []
    weak, sk4 = _day(B_CORE[:4])
    assert lines.lent_between_campaigns(weak, weak, {0: "cmp-a", 1: "cmp-b", 2: "cmp-c"}, sk4, 0.5) == []


def _three(n_a=40, n_b=40, c_from_a=A_CORE[:1], c_from_b=()):
    """Groups 0 (A), 1 (B), 2 (C): 30% of A's rows carry eight shingles of B's core, 30% of B's rows eight of
    C's, 30% of C's rows ``c_from_a`` (of A's core) and ``c_from_b`` (of B's)."""
    rows = [(0, A_CORE + [1000 + i] + (B_CORE[:8] if i % 10 < 3 else [])) for i in range(n_a)]
    rows += [(1, B_CORE + [2000 + i] + (C_CORE[:8] if i % 10 < 3 else [])) for i in range(n_b)]
    rows += [(2, C_CORE + [3000 + i] + (list(c_from_a) + list(c_from_b) if i % 10 < 3 else [])) for i in range(40)]
    return _skeletons(rows)


def test_three_variants_each_borrowing_from_one_other_are_one_family():
    # A borrows a line of B, B a line of C, C one shingle of A (a short line): the weak pair is no evidence
    # against, so the three join
    labels, sk = _three()
    assert lines.lent_shingles(labels, sk).rows() == [(0, 1, 8), (1, 2, 8), (2, 0, 1)]
    joined, merges = _join(labels, sk)
    assert merges == 2 and joined.tolist() == [0, 0, 0]
    # a variant lending a line to a small part of a joined pair does not join it: A (80 rows) and B (20) are
    # one family; C lends B its line, and B is a fifth of the pair's rows, below LINE_COVERAGE
    rows = [(0, A_CORE + [1000 + i] + (B_CORE[:8] if i % 10 < 3 else [])) for i in range(80)]
    rows += [(1, B_CORE + [2000 + i] + (C_CORE[:8] if i % 10 < 3 else [])) for i in range(20)]
    rows += [(2, C_CORE + [3000 + i]) for i in range(40)]
    labels, sk = _skeletons(rows)
    joined, merges = _join(labels, sk)
    assert merges == 1 and joined.tolist() == [0, 0, 2]
