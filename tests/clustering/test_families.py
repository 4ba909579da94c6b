"""Second-level grouping of fragments into template families (clusterer.families)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from clusterer import api, synth
from clusterer.clustering.families import average_linkage

EN = (
    "Summarise the document below in exactly five bullet points. Each bullet must stay under twenty words. "
    "Finish with a one-line conclusion.\n\nDocument: {p}"
)
ES = (
    "Resume el documento siguiente en exactamente cinco viñetas. Cada viñeta debe tener menos de veinte "
    "palabras. Termina con una conclusión de una línea.\n\nDocumento: {p}"
)
OTHER_EN = (
    "Check whether the statement below is true. Explain your reasoning carefully and then answer with "
    "VERDICT: true or VERDICT: false on the last line.\n\nStatement: {p}"
)


def test_average_linkage_needs_a_cohesive_group():
    # 0-1 and 1-2 are strong, 0-2 unknown: connected components would chain all three
    a, b, s = np.array([0, 1]), np.array([1, 2]), np.array([0.9, 0.9])
    groups, merges = average_linkage(3, a, b, s, 0.5)
    assert merges == 1 and groups.tolist() == [0, 0, 2]
    # a third pair makes the group cohesive
    groups, merges = average_linkage(3, np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([0.9, 0.9, 0.6]), 0.5)
    assert merges == 2 and groups.tolist() == [0, 0, 0]
    # a forbidden pair (negative) keeps a group from absorbing both
    groups, _ = average_linkage(3, np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.9, 0.8, -1.0]), 0.5)
    assert groups.tolist() == [0, 0, 2]
    # nothing above the threshold: nothing merges; empty input is fine
    assert average_linkage(3, a, b, np.array([0.4, 0.4]), 0.5)[0].tolist() == [0, 1, 2]
    assert average_linkage(0, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), 0.5)[0].tolist() == []


def test_average_linkage_weights_fragments_by_size_and_needs_coverage():
    """Two large fragments of one family (similar) plus a small noisy fragment of it that shares evidence
    with one of them only: unweighted, the unknown pair drags the groups apart; size-weighted, the large
    fragments carry the decision. A single bridging pair between two big groups never covers enough."""
    # 0 (1000 prompts) ~ 1 (1000) at 0.7; 2 (10) ~ 0 at 0.9; 2 ~ 1 never scored
    a, b, s = np.array([0, 0]), np.array([1, 2]), np.array([0.7, 0.9])
    groups, merges = average_linkage(3, a, b, s, 0.5, np.array([1000.0, 1000.0, 10.0]))
    assert merges == 2 and groups.tolist() == [0, 0, 0]
    # equal weights: {0, 2} then {0, 2} ~ 1 has one scored pair of two: coverage 0.5 < 0.7
    groups, merges = average_linkage(3, a, b, s, 0.5)
    assert merges == 1 and groups.tolist() == [0, 1, 0]
    # two groups of two joined by one strong pair: 1 of 4 pairs scored, never merged
    a, b, s = np.array([0, 2, 1]), np.array([1, 3, 2]), np.array([0.9, 0.9, 0.8])
    groups, _ = average_linkage(4, a, b, s, 0.5)
    assert groups.tolist() == [0, 0, 2, 2]
    # a pair scored 0 is known dissimilarity: it counts in the mean
    groups, _ = average_linkage(2, np.array([0]), np.array([1]), np.array([0.0]), 0.5)
    assert groups.tolist() == [0, 1]


def _day(variants, n_per=60, orgs=True, seed=0):
    """Traffic where each variant (scaffold, account pool, label, operator, (first hour, last hour)) sends
    n_per prompts over one payload pool within those hours; a fifth of each pool's accounts sit in one of
    four shell organisations of its operator."""
    rng = np.random.default_rng(seed)
    rows = []
    for scaffold, pool, label, operator, (h0, h1) in variants:
        for i in range(n_per):
            acct = f"{pool}-{i % 20}"
            org = f"{operator}-shell-{i % 4}" if i % 20 < 4 else f"org-{acct}"
            secs = float(rng.uniform(h0, h1) * 3600)
            rows.append((scaffold.format(p=synth._payload(rng, 0)), acct, org, label, secs))
    for _ in range(400):
        acct = f"user-{int(rng.integers(200))}"
        rows.append((synth._benign(rng), acct, f"org-{acct}", None, float(rng.uniform(0, 86_399))))
    rows.sort(key=lambda r: r[4])
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    traffic = pl.DataFrame(
        {
            "prompt_id": [f"p{i:05d}" for i in range(len(rows))],
            "account_id": [r[1] for r in rows],
            "timestamp": [start + dt.timedelta(seconds=r[4]) for r in rows],
            "text": [r[0] for r in rows],
            **({"org_id": [r[2] for r in rows]} if orgs else {}),
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))
    return traffic, [r[3] for r in rows]


def _families(tmp_path, traffic, cfg):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "day.parquet"
    traffic.write_parquet(path)
    api.run([path], tmp_path / "out", cfg)
    return pl.read_parquet(tmp_path / "out" / "assignments.parquet")["cluster_id"].to_numpy()


def _ari(labels, cluster):
    camp = np.array([x is not None for x in labels])
    return adjusted_rand_score(np.array(labels, dtype=object)[camp].astype(str), cluster[camp])


@pytest.mark.slow
def test_translated_variant_joins_through_shared_organisations(tmp_path, fast_cfg):
    day = (0, 24)
    variants = [
        (EN, "en", "summary", "op", day),
        (ES, "es", "summary", "op", day),
        (OTHER_EN, "x", "verdict", "x", day),
    ]
    traffic, labels = _day(variants)
    cl = _families(tmp_path / "with", traffic, fast_cfg())
    assert _ari(labels, cl) == pytest.approx(1.0)
    # without the organisation column nothing links the translation: two families of the same campaign
    cl = _families(tmp_path / "without", traffic.drop("org_id"), fast_cfg())
    summary = np.array([x == "summary" for x in labels])
    assert len(set(cl[summary].tolist())) == 2 and (cl[summary] >= 0).all()


@pytest.mark.slow
def test_two_templates_of_one_operator_stay_apart(tmp_path, fast_cfg):
    # same accounts, same organisations, same payload pool, two English scaffolds run as separate jobs:
    # two campaigns
    traffic, labels = _day([(EN, "op", "summary", "op", (0, 24)), (OTHER_EN, "op", "verdict", "op", (10, 20))])
    cl = _families(tmp_path / "jobs", traffic, fast_cfg())
    assert _ari(labels, cl) == pytest.approx(1.0)
    # sent together by one job, two English scaffolds look like re-worded variants of one template to an
    # English-only encoder: joined (a documented limit, see clusterer.families)
    traffic, labels = _day([(EN, "op", "summary", "op", (0, 24)), (OTHER_EN, "op", "verdict", "op", (0, 24))])
    cl = _families(tmp_path / "one_job", traffic, fast_cfg())
    camp = np.array([x is not None for x in labels])
    assert len(set(cl[camp].tolist())) == 1


@pytest.mark.slow
def test_heavy_accounts_posting_many_templates_do_not_join_them(tmp_path, fast_cfg):
    # eight unrelated texts, every one posted by the same five heavy accounts
    rng = np.random.default_rng(3)
    texts = [" ".join(rng.choice(synth._WORDS, 40)) + " please answer in full." for _ in range(8)]
    rows = [(t, f"heavy-{i % 5}", f"t{k}") for k, t in enumerate(texts) for i in range(15)]
    rows += [(synth._benign(rng), f"user-{int(rng.integers(150))}", None) for _ in range(300)]
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    traffic = pl.DataFrame(
        {
            "prompt_id": [f"p{i:05d}" for i in range(len(rows))],
            "account_id": [r[1] for r in rows],
            "timestamp": [start + dt.timedelta(seconds=60 * i) for i in range(len(rows))],
            "text": [r[0] for r in rows],
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))
    cl = _families(tmp_path, traffic, fast_cfg())
    assert _ari([r[2] for r in rows], cl) == pytest.approx(1.0)


@pytest.mark.parametrize("density", [0.002, 0.05])
def test_pair_products_match_scipy_also_for_one_long_row(density):
    """The evidence between fragments sums products (or minima) over the columns two sparse rows share; a
    fragment whose account pool is huge is one long row, searched rather than merged."""
    from scipy.sparse import csr_matrix
    from scipy.sparse import random as sparse_random

    from clusterer.clustering.families import _rows_dot, _rows_min_sum

    rng = np.random.default_rng(1)
    x = sparse_random(300, 2000, density=density, random_state=1, format="lil")
    x[7, :] = rng.random(2000)
    x = csr_matrix(x)
    y = csr_matrix(sparse_random(300, 2000, density=density, random_state=2))
    a, b = rng.integers(0, 300, 5000), rng.integers(0, 300, 5000)
    a[:40] = 7
    b[40:80] = 7
    np.testing.assert_allclose(_rows_dot(x, y, a, b), np.asarray(x[a].multiply(y[b]).sum(axis=1)).ravel())
    np.testing.assert_allclose(_rows_min_sum(x, a, b), np.asarray(x[a].minimum(x[b]).sum(axis=1)).ravel())
    assert _rows_dot(x, y, a[:0], b[:0]).shape == (0,)


def test_time_profiles_add_the_day_so_far():
    from clusterer.clustering.families import DayRhythm, time_profiles

    t0 = int(dt.datetime(2026, 11, 1, 10, 5, tzinfo=dt.timezone.utc).timestamp())  # half hour 20
    groups = np.array([0, 0, 0, 1, 1, 1, -1])
    times = np.full(7, t0, np.int64)
    own = time_profiles(groups, times, 2)
    assert own[0, 20] == 3 and own[1, 20] == 3 and own.sum() == 6  # one hour: the two groups look alike
    # group 0 holds all the window's rows of campaign 0, which has run since midnight; group 1 is new
    day = np.zeros((1, 48))
    day[0, :20] = 10.0
    prof = time_profiles(groups, times, 2, DayRhythm(np.array([0, 0, -1, -1, -1, -1, 0]), day))
    assert prof[0, :20].tolist() == [10.0] * 20 and prof[0, 20] == 3 and prof[1].sum() == 3
    # a campaign's rows split over two groups share its day in proportion
    prof = time_profiles(groups, times, 2, DayRhythm(np.array([0, -1, -1, 0, -1, -1, -1]), day))
    assert prof[0, 0] == 5.0 and prof[1, 0] == 5.0


def test_time_profiles_add_the_earlier_prompts_of_a_group():
    """A variant never flagged (no campaign's day rhythm) that has run since midnight: its accounts' earlier
    prompts today give it the day's profile, so the rhythm evidence does not read it as a job started this
    hour."""
    from clusterer.clustering.families import DaySenders, time_profiles

    t0 = int(dt.datetime(2026, 11, 1, 10, 5, tzinfo=dt.timezone.utc).timestamp())  # half hour 20
    groups = np.array([0, 0, 1, 1])
    day = DaySenders(
        prompt=np.array([0, 1, 2, 2]),
        fragment=np.array([3, 3, 4, 5]),  # fragments 3 -> group 1; 4 and 5 -> group 0 (prompt 2 counts once)
        account=np.array([0, 1, 2, 2]),
        weight=np.array([2.0, 1.0, 1.0, 1.0]),
        half_hour=np.array([4, 6, 8, 8]),
    )
    earlier = day.group_profiles(np.array([-1, -1, -1, 1, 0, 0]), 2)
    assert earlier[1, 4] == 2.0 and earlier[1, 6] == 1.0 and earlier[0, 8] == 1.0 and earlier.sum() == 4.0
    prof = time_profiles(groups, np.full(4, t0, np.int64), 2, None, earlier)
    assert prof[0].tolist()[8] == 1.0 and prof[0, 20] == 2 and prof[1, 4] == 2.0 and prof.sum() == 8.0
    assert (
        DaySenders(day.prompt, day.fragment, day.account, day.weight).group_profiles(np.zeros(6, np.int64), 1) is None
    )
    # a prompt whose account's day so far was only sampled (half hour -1) counts as a sender, not in the rhythm
    part = DaySenders(day.prompt, day.fragment, day.account, day.weight, np.array([-1, 6, 8, 8]))
    assert part.group_profiles(np.array([-1, -1, -1, 1, 0, 0]), 2).sum() == 2.0


def test_large_fragments_are_always_compared(monkeypatch):
    """Two large fragments of one template whose nearest centroids are each a dozen small fragments of their
    own variant (as on a big day): the pair of large ones is still scored and they group; scored by nearest
    centroids alone, it stays unknown and the two variants stay apart."""
    from clusterer.clustering import families
    from clusterer.config import ClusterConfig, SkeletonConfig
    from clusterer.text.skeleton import build_skeletons
    from clusterer.vectors.rows import RowVectors

    rng = np.random.default_rng(3)
    dim, n_small = 30, 12
    u, v = np.zeros(dim), np.zeros(dim)
    u[0], v[0], v[1] = 1.0, 0.9, np.sqrt(1 - 0.81)
    vecs, labels = [u, v], [0] * 200 + [1] * 200
    for side, base in enumerate((u, v)):
        for i in range(n_small):
            w = base.copy()
            w[2 + side * n_small + i] = 0.25
            vecs.append(w / np.linalg.norm(w))
            labels += [len(vecs) - 1] * 2
    noise = np.zeros(dim)
    noise[-1] = 1.0
    vecs.append(noise)
    labels += [-1] * 3000
    vectors = np.array(vecs, np.float32)
    of_row = np.concatenate([np.full(200, 0), np.full(200, 1), np.repeat(np.arange(2, 2 + 2 * n_small), 2)])
    of_row = np.concatenate([of_row, np.full(3000, len(vecs) - 1)]).astype(np.int64)
    labels = np.array(labels, np.int64)
    emb = RowVectors(vectors, of_row)
    words = [f"w{i}" for i in range(50_000)]
    texts = pl.Series([" ".join(rng.choice(words, 6)) for _ in range(len(labels))])
    sk = build_skeletons(texts, SkeletonConfig())
    k = int(labels.max()) + 1
    cent = families._centred_centroids(labels, emb, k)
    # the premise: each large fragment has more than CENTROID_NEIGHBOURS small fragments nearer than the other
    assert (cent[2 : 2 + n_small] @ cent[0] > cent[1] @ cent[0]).sum() > families.CENTROID_NEIGHBOURS
    readable = np.ones(k, bool)

    def stage():
        groups, _, (a, b, _) = families._template_stage(labels, emb, sk, k, ClusterConfig(), readable)
        return groups, {(int(x), int(y)) for x, y in zip(a, b, strict=True)}

    groups, pairs = stage()
    assert (0, 1) in pairs and groups[0] == groups[1]
    monkeypatch.setattr(families, "LARGEST_ALL_PAIRS", 0)
    groups, pairs = stage()
    assert (0, 1) not in pairs and groups[0] != groups[1]


def test_earlier_prompts_today_are_shared_senders():
    """Inside one window a load-balanced campaign's two paraphrased variants share no sender (each account
    sends one prompt an hour); over the day so far they share all of them, which the sender evidence reads
    from the accounts' earlier prompts (:class:`DaySenders`)."""
    from clusterer.clustering.families import DaySenders, _sender_evidence
    from clusterer.config import ClusterConfig

    cfg = ClusterConfig()
    groups = np.repeat([0, 1], 20)  # variant A from accounts 0-19, variant B from accounts 20-39
    accounts = np.arange(40)
    a, b = np.array([0]), np.array([1])
    assert _sender_evidence(groups, accounts, 2, a, b, cfg, cfg.family_min_accounts).tolist() == [0.0]
    # earlier today each account sent the other variant once (fragment 1 is A's, fragment 2 B's); earlier
    # prompt 40 holds both of A's fragments and counts once
    fragment_group = np.array([-1, 0, 1, 0])
    day = DaySenders(
        prompt=np.array([*range(40), 40]),
        fragment=np.array([2] * 20 + [1] * 20 + [1]),
        account=np.array([*range(40), 0]),
        weight=np.ones(41),
    )
    earlier = day.group_counts(fragment_group, 2, 40)
    day2 = DaySenders(np.append(day.prompt, 40), np.append(day.fragment, 3), np.append(day.account, 0), np.ones(42))
    assert (day2.group_counts(fragment_group, 2, 40) != earlier).nnz == 0
    assert earlier.sum() == 41 and earlier[0, 0] == 1 and earlier[1, 0] == 1
    ev = _sender_evidence(groups, accounts, 2, a, b, cfg, cfg.family_min_accounts, earlier)
    assert ev.tolist() == [1.0]
    # one account that also sent the other variant is a stray link; three are weak evidence, not a pool

    def some(n):
        day = DaySenders(np.arange(n), np.full(n, 2), np.arange(n), np.ones(n))
        return _sender_evidence(
            groups, accounts, 2, a, b, cfg, cfg.family_min_accounts, day.group_counts(fragment_group, 2, 40)
        )

    assert some(1).tolist() == [0.0] and 0.0 < some(3)[0] < 0.5


def test_group_languages_match_reading_every_group():
    # template groups of one fragment take the fragment's language; groups of several are read: the result is
    # fragment_languages over the groups
    import numpy as np
    import polars as pl

    from clusterer.clustering.families import _group_languages, fragment_languages
    from clusterer.config import SkeletonConfig
    from clusterer.text.skeleton import build_skeletons

    scaffolds = [
        "please translate the following passage into plain english and keep every name as it is: {}",
        "résume le texte suivant en trois phrases courtes et garde les noms propres tels quels : {}",
        "fasse den folgenden text in drei kurzen sätzen zusammen und behalte alle namen bei: {}",
        "write a short poem about the following topic and give it a title of four words: {}",
    ]
    texts, frag = [], []
    for f, s in enumerate(scaffolds):
        for i in range(12):
            texts.append(s.format(f"item{f}x{i} alpha{i} beta{f}"))
            frag.append(f)
    texts.append("a lone prompt")
    frag.append(-1)
    labels = np.array(frag, np.int64)
    sk = build_skeletons(pl.Series(texts), SkeletonConfig(min_df=5))
    lang0 = fragment_languages(labels, pl.Series(texts), sk, 3, 4)
    assert lang0[:3] == ["en", "fr", "de"]
    for grp in ([0, 1, 2, 3], [0, 0, 1, 2], [1, 0, 1, 0], [0, 0, 0, 0]):
        grp = np.array(grp, np.int64)
        groups = np.where(labels >= 0, grp[np.maximum(labels, 0)], -1)
        want = fragment_languages(groups, pl.Series(texts), sk, 3, int(grp.max()) + 1)
        assert _group_languages(groups, grp, int(grp.max()) + 1, lang0, pl.Series(texts), sk, 3) == want
