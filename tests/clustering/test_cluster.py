import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clusterer.accel.backend import Backend
from clusterer.clustering.hdbscan import cluster_graph, mutual_reachability_mst
from clusterer.config import ClusterConfig, GraphConfig
from clusterer.graph.edges import knn_edges
from clusterer.graph.knn import knn_graph


def _blobs(seed, n_blobs=4, per=50, noise=40, d=16, spread=0.08):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_blobs, d))
    x = [c + spread * rng.normal(size=(per, d)) for c in centres] + [rng.normal(size=(noise, d))]
    truth = np.repeat(np.arange(n_blobs + 1), [per] * n_blobs + [noise])
    x = np.concatenate(x).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), truth


def test_recovers_blobs_like_reference_hdbscan():
    import hdbscan

    x, truth = _blobs(0)
    labels = cluster_graph(knn_graph(x, GraphConfig(k=15), Backend.CPU), ClusterConfig()).labels
    blob = truth < 4
    assert adjusted_rand_score(truth[blob], labels[blob]) > 0.95
    ref = hdbscan.HDBSCAN(min_cluster_size=10, min_samples=5).fit_predict(x)
    assert adjusted_rand_score(ref, labels) > 0.9


def test_disconnected_components_do_not_fail():
    # two far-apart groups whose kNN graphs never touch
    x, _ = _blobs(1, n_blobs=2, per=30, noise=0, spread=0.01)
    knn = knn_graph(x, GraphConfig(k=5), Backend.CPU)
    mst = mutual_reachability_mst(len(x), *knn_edges(knn), 5)
    assert mst.shape == (len(x) - 1, 3)
    assert np.all(np.diff(mst[:, 2]) >= 0)
    labels = cluster_graph(knn, ClusterConfig(min_cluster_size=5)).labels
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1 and labels[0] != labels[30]


def test_labels_are_canonical_and_deterministic():
    x, _ = _blobs(2)
    knn = knn_graph(x, GraphConfig(k=15), Backend.CPU)
    a = cluster_graph(knn, ClusterConfig())
    b = cluster_graph(knn, ClusterConfig())
    assert a.labels.tolist() == b.labels.tolist()
    first_rows = [int(np.flatnonzero(a.labels == c)[0]) for c in range(a.labels.max() + 1)]
    assert first_rows == sorted(first_rows)
    assert len(a.persistence) == a.labels.max() + 1


def test_exact_duplicates_form_a_cluster():
    x, _ = _blobs(3, n_blobs=2, per=20, noise=60)
    x[:20] = x[0]
    x[20:40] = x[20]
    labels = cluster_graph(knn_graph(x, GraphConfig(k=10), Backend.CPU), ClusterConfig()).labels
    assert len(set(labels[:20])) == 1 and labels[0] >= 0
    assert len(set(labels[20:40])) == 1 and labels[20] >= 0 and labels[20] != labels[0]


def test_too_few_points_are_noise():
    x, _ = _blobs(4, n_blobs=1, per=5, noise=0)
    assert (cluster_graph(knn_graph(x, GraphConfig(k=4), Backend.CPU), ClusterConfig()).labels == -1).all()


def test_noise_joins_clusters_by_strong_edges_and_neighbour_votes():
    from clusterer.clustering.refine import attach_noise, propagate_labels

    labels = np.array([0, 0, 0, 1, 1, 1, -1, -1, -1])
    i = np.array([6, 6, 6, 6, 7, 7, 7, 8])
    j = np.array([0, 1, 2, 3, 6, 0, 1, 3])
    sim = np.array([0.6, 0.6, 0.6, 0.55, 0.9, 0.1, 0.1, 0.52], np.float32)
    # one strong edge: node 7 joins its neighbour's cluster (node 6 is noise, so nothing yet)
    assert attach_noise(labels, i, j, sim, 0.8).tolist() == labels.tolist()
    # votes: node 6 has three cluster-0 neighbours of four >= 0.5; then node 7 follows node 6 next round
    grown = propagate_labels(labels, i, j, sim, 0.5, 3, 0.5, rounds=5)
    assert grown[6] == 0 and grown[7] == -1  # node 7 has one vote (node 6), fewer than 3
    assert grown[8] == -1  # a single vote for cluster 1 is not enough
    assert propagate_labels(labels, i, j, sim, 0.5, 1, 0.5, rounds=5)[7] == 0
    assert propagate_labels(labels, i, j, sim, 0.5, 3, 0.5, rounds=0).tolist() == labels.tolist()


def _sets(rows):
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    return indptr, np.concatenate([np.sort(np.asarray(r, np.uint64)) for r in rows]).astype(np.uint64)


def test_a_cluster_core_holds_the_shingles_of_at_least_half_its_members():
    """98 members: a shingle held by exactly 49 is in the core (49 · (1/98) rounds below 0.5 in floating
    point, the case an integer test gets right), one held by 48 is not."""
    from clusterer.clustering.refine import _cores, attach_by_template, core_share

    scaffold = [1, 2, 3, 4]
    rows = [[*scaffold, 100 + r, *([7] if r < 49 else []), *([8] if r < 48 else [])] for r in range(98)]
    rows += [[1, 2, 3, 4, 7, 999], [1, 2, 999, 998], [50, 51, 52, 53]]  # noise: carries it / half / other
    labels = np.array([0] * 98 + [-1, -1, -1], np.int64)
    indptr, hashes = _sets(rows)
    core, size, cols, _ = _cores(labels, indptr, hashes, 3)
    assert sorted(cols[core.tocsr()[0].indices].tolist()) == [1, 2, 3, 4, 7] and size.tolist() == [5.0]
    # a core smaller than min_shingles takes part in nothing
    assert _cores(labels, indptr, hashes, 6)[0].nnz == 0
    # noise joins the cluster whose core it carries (share >= 0.6 and >= 3 core shingles); 2/5 does not
    joined = attach_by_template(labels, indptr, hashes, 0.6, 3)
    assert joined[98:].tolist() == [0, -1, -1]
    share = core_share(joined, indptr, hashes, 3)
    assert share[0] == pytest.approx(1.0) and share[60] == pytest.approx(0.8) and share[98] == pytest.approx(1.0)
    assert share[99:].tolist() == [0.0, 0.0]


def test_a_minority_variant_shares_its_own_lines_and_a_payload_copy_shares_nothing():
    """One fragment: 70 members of variant A (shingles 1-6), 30 of a re-worded variant B (shingles 11-16)
    and 3 ordinary prompts whose text (shingles 50-55) three members also carry as payload. Variant B holds
    none of the fragment's core (A's lines) yet shares its own with 30 members; the copies share theirs with
    six rows only."""
    from clusterer.clustering.refine import core_share, shared_template

    copy = [50, 51, 52, 53, 54, 55]
    rows = [[1, 2, 3, 4, 5, 6, 1000 + r] for r in range(70)] + [[11, 12, 13, 14, 15, 16, 2000 + r] for r in range(30)]
    rows[:3] = [[*r, *copy] for r in rows[:3]]  # three A members carry the ordinary text as payload
    rows += [list(copy)] * 3 + [[11, 12, 13, 14, 15, 16]]  # the ordinary copies; a noise row of variant B
    labels = np.array([0] * 103 + [-1], np.int64)
    indptr, hashes = _sets(rows)
    fit = core_share(labels, indptr, hashes, 4)
    assert fit[:70].min() == pytest.approx(1.0) and fit[70:103].max() == 0.0  # B and the copies: no core
    shared = shared_template(labels, indptr, hashes, 0.05, 10)
    assert shared[:3].tolist() == [6, 6, 6]  # A's lines; its payload copy's shingles are shared by six rows
    assert shared[3:70].min() == 6 and shared[70:100].min() == 6  # variant B: its own lines, with 30 members
    assert shared[100:].tolist() == [0, 0, 0, 0]  # the copies; noise
    # a variant under the share (30 < 0.3 · 103) does not count
    assert shared_template(labels, indptr, hashes, 0.3, 10)[70:100].max() == 0
    # a cluster of 12 asks for shingles held by 3, a quarter of it, not by the member floor of 10
    rows12 = [[1, 2, 3, 4, 5, 6, 7000 + r] if r < 3 else [1, 2, 3, 4, 8000 + r] for r in range(10)]
    rows12 += [[9, 9000], [9, 9001]]  # shingle 9 is held by two: not shared
    ip12, h12 = _sets(rows12)
    assert shared_template(np.zeros(12, np.int64), ip12, h12, 0.05, 10).tolist() == [6] * 3 + [4] * 7 + [0, 0]


def test_an_ordinary_copy_of_a_wrapped_payload_is_a_copy_and_a_minority_variant_is_not():
    """One family of two fragments. Fragment 0: 1,000 members of the campaign's scaffold (shingles 1-6).
    Fragment 1: a popular prompt (shingles 50-55) sent 40 times on its own, 8 campaign members that wrap it
    (its text plus scaffold lines 1-3) and 12 members of a translated variant (shingles 31-36) that holds
    none of the family's scaffold either. The 40 ordinary copies pass the fragment's tests (they hold its
    core and share it with a real part of it); only the family's scaffold tells them apart. The translated
    members' lines are not inside the scaffold carriers' prompts, so they are not copies; nor is a copy in
    a fragment without carriers, nor anything with the rule off. A text that a real part of the family
    holds (5% of it) counts as its scaffold: nothing holding it is a copy."""
    from clusterer.clustering.refine import payload_copies, shared_template

    text = [50, 51, 52, 53, 54, 55]
    rows = [[1, 2, 3, 4, 5, 6, 1000 + r] for r in range(1000)]
    rows += [list(text)] * 40 + [[1, 2, 3, *text, 3000 + r] for r in range(8)]
    rows += [[31, 32, 33, 34, 35, 36, 4000 + r] for r in range(12)]
    rows += [list(text)] * 5  # the same text in a fragment of its own (no carriers there)
    fragments = np.array([0] * 1000 + [1] * 60 + [2] * 5, np.int64)
    families = np.array([0] * 1060 + [1] * 5, np.int64)
    copy, wrap, variant, alone = slice(1000, 1040), slice(1040, 1048), slice(1048, 1060), slice(1060, 1065)
    indptr, hashes = _sets(rows)
    assert shared_template(fragments, indptr, hashes, 0.05, 10)[copy].min() == 6  # the copies pass that test
    copies = payload_copies(fragments, families, indptr, hashes, 0.05, 10, 0.9)
    assert copies[copy].all()  # the ordinary copies
    assert not copies[:1000].any() and not copies[wrap].any()  # the scaffold and the members that wrap the text
    assert not copies[variant].any()  # the translated variant: its own lines
    assert not copies[alone].any()  # a family of its own: the text is that family's scaffold
    # the copies are also one text in a fragment most of which holds no scaffold (the one-text rule); with
    # that rule off (max_edit -1) the containment rule alone finds them
    assert (payload_copies(fragments, families, indptr, hashes, 0.05, 10, 0.9, max_edit=-1) == copies).all()
    # in the campaign's family, the fragment of five copies is one text beside a templated family: copies
    fam0 = np.zeros(len(rows), np.int64)
    assert payload_copies(fragments, fam0, indptr, hashes, 0.05, 10, 0.9)[alone].all()
    assert not payload_copies(fragments, fam0, indptr, hashes, 0.05, 10, 0.9, max_edit=-1)[alone].any()
    assert not payload_copies(fragments, families, indptr, hashes, 0.05, 10, 1.5).any()  # off
    # the text held by 48 of 1,060 members is the family's scaffold at a share of 4%
    assert not payload_copies(fragments, families, indptr, hashes, 0.04, 10, 0.9).any()
    # a member that holds one of the family's scaffold shingles beside the text is not a copy
    rows[1000] = [1, *text]
    # a prompt only partly inside the carriers' prompts (its own words beside the wrapped text, more than the
    # one word's worth a copy may differ by) is not one
    rows[1001] = [*text, 90, 91, 92, 93]
    indptr, hashes = _sets(rows)
    got = payload_copies(fragments, families, indptr, hashes, 0.05, 10, 0.9)
    assert not got[1000] and not got[1001] and got[1002:1040].all()


def test_a_fragment_of_one_popular_text_in_a_campaign_family_is_copies():
    """A popular prompt's ordinary uses make a fragment of their own that joined a campaign family: its
    members hold none of the family's scaffold and each is the one text (a typo's shingles aside): copies.
    A minority variant of the family (its own scaffold, varied payloads) and a fragment whose members differ
    by more than one word are not."""
    from clusterer.clustering.refine import payload_copies

    text = list(range(50, 62))  # 12 shingles
    rows = [[1, 2, 3, 4, 5, 6, 1000 + r] for r in range(1000)]
    rows += [list(text) for _ in range(27)] + [[*text[:9], 900 + r, 910 + r, 920 + r] for r in range(3)]  # typos
    rows += [[31, 32, 33, 34, 35, 36, 4000 + r, 4100 + r, 4200 + r, 4300 + r] for r in range(20)]  # a variant
    rows += [[*text[:6], 5000 + r, 5100 + r, 5200 + r, 5300 + r] for r in range(20)]  # four words changed
    fragments = np.array([0] * 1000 + [1] * 30 + [2] * 20 + [3] * 20, np.int64)
    families = np.zeros(len(rows), np.int64)
    indptr, hashes = _sets(rows)
    got = payload_copies(fragments, families, indptr, hashes, 0.05, 10, 0.9, max_edit=3)
    assert got[1000:1030].all()  # the copies, typos included
    assert not got[:1000].any() and not got[1030:].any()
    assert not payload_copies(fragments, families, indptr, hashes, 0.05, 10, 0.9, max_edit=2)[1027:1030].any()
    # a family of fixed texts (a campaign rotating fixed prompts) has no scaffold carriers: nothing is a copy
    rot = [[100 * f + i for i in range(8)] for f in range(25) for _ in range(40)]
    ip, hs = _sets(rot)
    assert not payload_copies(np.repeat(np.arange(25), 40), np.zeros(1000, np.int64), ip, hs, 0.05, 10, 0.9).any()


def test_hdbscan_private_tree_api_is_the_tested_one():
    """cluster_edges calls hdbscan's private tree routines by keyword; an hdbscan release that renames or
    drops them (or their parameters) must fail here, loudly, before it mis-clusters a day."""
    import importlib
    import inspect
    from importlib.metadata import version

    from clusterer.clustering.hdbscan import HDBSCAN_PRIVATE_API, HDBSCAN_TESTED

    assert version("hdbscan") == HDBSCAN_TESTED, (
        f"hdbscan {version('hdbscan')} is installed; clusterer is tested with {HDBSCAN_TESTED} (pyproject pin)"
    )
    for dotted, params in HDBSCAN_PRIVATE_API.items():
        module, name = dotted.rsplit(".", 1)
        fn = getattr(importlib.import_module(module), name)
        assert tuple(inspect.signature(fn).parameters)[: len(params)] == params, dotted


def test_one_dense_group_is_a_cluster_not_noise():
    """Every edge at one distance (a day of one template): no split below the root, yet one cluster."""
    from clusterer.clustering.hdbscan import cluster_edges

    n = 300
    i = np.arange(n - 1)
    j = i + 1
    got = cluster_edges(n, i, j, np.ones(n - 1), ClusterConfig())
    assert (got.labels == 0).all()


def test_a_short_scaffold_variant_takes_its_long_payload_members():
    """A scaffold variant of a few words ("entity extraction job. no prose.") paraphrased per prompt keeps a
    core of four shingles; members whose long payload left them without graph neighbours hold all four and
    join it at the default settings, while a prompt holding two of them does not."""
    from clusterer.clustering.refine import attach_by_template
    from clusterer.config import ClusterConfig

    core = [1, 2, 3, 4]
    rows = [[*core, *(1000 * (r + 1) + np.arange(5))] for r in range(40)]  # members: core + own payload
    rows += [[*core, *(90_000 + np.arange(300))], [1, 2, *(95_000 + np.arange(50))]]
    labels = np.array([0] * 40 + [-1, -1], np.int64)
    indptr, hashes = _sets(rows)
    c = ClusterConfig()
    joined = attach_by_template(labels, indptr, hashes, c.attach_template, c.attach_template_shingles)
    assert joined[40:].tolist() == [0, -1]


def test_a_paraphrased_member_holding_half_the_core_joins():
    """Paraphrased per prompt, a member keeps about half of its scaffold's core: holding 4 of an 8-shingle
    core joins at the default settings; 3 of 8 does not."""
    from clusterer.clustering.refine import attach_by_template
    from clusterer.config import ClusterConfig

    core = list(range(1, 9))
    rows = [[*core, *(1000 * (r + 1) + np.arange(5))] for r in range(40)]
    rows += [[1, 3, 5, 7, *(90_000 + np.arange(200))], [2, 4, 6, *(95_000 + np.arange(200))]]
    labels = np.array([0] * 40 + [-1, -1], np.int64)
    indptr, hashes = _sets(rows)
    c = ClusterConfig()
    joined = attach_by_template(labels, indptr, hashes, c.attach_template, c.attach_template_shingles)
    assert joined[40:].tolist() == [0, -1]


def test_a_scaffolded_copy_of_a_popular_prompt_moves_to_its_scaffold_cluster():
    """A popular prompt sent on its own by 30 users and inside a campaign's short scaffold by 20: HDBSCAN
    puts all 50 in one cluster whose core is the popular prompt. The 20 also hold the core of the campaign's
    large cluster (scaffold around varied payloads) outside their own cluster's core, so they move to it;
    the 30 plain copies stay, and so does a member of the campaign cluster whose payload is the popular
    prompt (the payload cluster is not larger). Off (ratio 0), nothing moves."""
    from clusterer.clustering.refine import rehome_by_template
    from clusterer.config import ClusterConfig

    scaffold, popular = [1, 2, 3, 4, 5], list(range(500, 530))
    campaign = [[*scaffold, *(1000 * (r + 1) + np.arange(8))] for r in range(200)]  # cluster 0
    campaign[0] = [*scaffold, *popular]
    payload = [list(popular) for _ in range(30)] + [[*scaffold[:4], *popular] for _ in range(20)]  # cluster 1
    labels = np.array([0] * 200 + [1] * 50, np.int64)
    indptr, hashes = _sets(campaign + payload)
    c = ClusterConfig()
    moved = rehome_by_template(labels, indptr, hashes, c.attach_template, c.attach_template_shingles, 2.0)
    assert moved[:200].tolist() == [0] * 200
    assert moved[200:230].tolist() == [1] * 30 and moved[230:].tolist() == [0] * 20
    # holding 2 of the 5 (below half) does not move; nor at a ratio above the sizes (200 / 50)
    few = [list(popular) for _ in range(30)] + [[*scaffold[:2], *popular] for _ in range(20)]
    indptr2, hashes2 = _sets(campaign + few)
    assert (rehome_by_template(labels, indptr2, hashes2, 0.5, 4, 2.0) == labels).all()
    assert (rehome_by_template(labels, indptr, hashes, 0.5, 4, 5.0) == labels).all()
    assert (rehome_by_template(labels, indptr, hashes, 0.5, 4, 0.0) == labels).all()


def test_a_variant_fragment_holding_the_larger_core_inside_its_own_stays():
    """A variant fragment whose members all carry the large cluster's scaffold plus their own wording holds
    that scaffold inside its own core: it is a variant (the families stage's call), not a payload cluster,
    and stays; and no cluster is emptied even when each of its members would move."""
    from clusterer.clustering.refine import rehome_by_template

    scaffold = [1, 2, 3, 4, 5, 6]
    big = [[*scaffold, *(1000 * (r + 1) + np.arange(5))] for r in range(100)]
    variant = [[*scaffold, 70, 71, 72, 73, *(50_000 + 10 * r + np.arange(3))] for r in range(20)]
    labels = np.array([0] * 100 + [1] * 20, np.int64)
    indptr, hashes = _sets(big + variant)
    assert (rehome_by_template(labels, indptr, hashes, 0.5, 4, 2.0) == labels).all()
    # each of 20 members holds 3 of a 7-shingle core (each shingle in fewer than half of them, so outside
    # their own core of 4 shared shingles): at a 0.4 share each would move, so none does
    seven = [*scaffold, 7]
    big7 = [[*seven, *(1000 * (r + 1) + np.arange(5))] for r in range(100)]
    spread = [[*[seven[(r + q) % 7] for q in range(3)], 80, 81, 82, 83, 60_000 + r] for r in range(20)]
    indptr3, hashes3 = _sets(big7 + spread)
    assert (rehome_by_template(labels, indptr3, hashes3, 0.4, 3, 2.0)[100:] == 1).all()
    # with one plain member left behind, the other 20 move
    spread.append([80, 81, 82, 83, 61_000])
    labels4 = np.array([0] * 100 + [1] * 21, np.int64)
    indptr4, hashes4 = _sets(big7 + spread)
    assert rehome_by_template(labels4, indptr4, hashes4, 0.4, 3, 2.0)[100:].tolist() == [0] * 20 + [1]


def test_rehoming_in_row_slices_moves_the_same_rows(monkeypatch):
    """The rows are taken in slices (a bounded product at 1M rows); slices of 7 rows, cutting clusters and
    the moving rows apart, move exactly what one slice does."""
    from clusterer.clustering import refine

    rng = np.random.default_rng(3)
    scaffold, popular = [1, 2, 3, 4, 5], list(range(500, 530))
    rows = [[*scaffold, *(1000 * (r + 1) + np.arange(8))] for r in range(120)]
    rows += [list(popular) if q < 30 else [*scaffold[:4], *popular] for q in range(50)]
    labels = np.array([0] * 120 + [1] * 50, np.int64)
    perm = rng.permutation(len(rows))
    rows, labels = [rows[p] for p in perm], labels[perm]
    indptr, hashes = _sets(rows)
    whole = refine.rehome_by_template(labels, indptr, hashes, 0.5, 4, 2.0)
    assert (whole != labels).sum() == 20
    monkeypatch.setattr(refine, "REHOME_ROWS", 7)
    assert refine.rehome_by_template(labels, indptr, hashes, 0.5, 4, 2.0).tolist() == whole.tolist()


def test_noise_carrying_a_many_worded_familys_scaffold_joins_the_family():
    """Family 0: five fragments, one per wording of a campaign's scaffold (six shingles each, every member
    missing one: a core of six held by 50 of 60). Twenty members also wrap a popular text (ten shingles)
    that 30 ordinary prompts send on their own. Family 1: another scaffold. A noise prompt mixing wordings
    holds two shingles of any one fragment's core — too little for ``attach_by_template`` — but five of the
    family's scaffold, as much as a member: it joins family 0, in the first fragment it shares the most
    with. Three shingles are not enough; the popular text's copies stay noise (the family holds that text
    with fewer than half of the day's holders: not its scaffold); a prompt carrying family 1's scaffold more
    than family 0's joins family 1; 0 turns the rule off."""
    from clusterer.clustering import refine

    rows, fragments = [], []
    for f in range(5):
        for m in range(60):
            words = [100 * f + i for i in range(1, 7) if i != 1 + m % 6]
            rows.append([*words, 10_000 + 100 * f + m])
            fragments.append(f)
    text = list(range(900, 910))
    for m in range(20):
        rows[m * 15] = [*rows[m * 15], *text]  # members wrapping the popular text
    rows += [[700 + i for i in range(6)] + [20_000 + m] for m in range(40)]  # family 1
    fragments += [5] * 40
    mixed = [1, 2, 101, 102, 201, *range(30_000, 30_200)]
    three = [1, 2, 101, *range(31_000, 31_200)]
    other = [1, 2, 101, 102, 700, 701, 702, 703, 704, 705]
    rows += [mixed, three, other] + [list(text)] * 30
    fragments += [-1] * 33
    fragments = np.array(fragments, np.int64)
    families = np.where(fragments >= 5, 1, np.where(fragments >= 0, 0, -1))
    indptr, hashes = _sets(rows)
    n0 = 340
    assert refine.attach_by_template(fragments, indptr, hashes, 0.5, 4)[n0].item() == -1  # 2 of 6: too little

    frag, fam = refine.attach_to_families(fragments, families, indptr, hashes, 0.05, 10, 4, 0.5)
    assert fam[n0 : n0 + 3].tolist() == [0, -1, 1] and frag[n0 : n0 + 3].tolist() == [0, -1, 5]
    assert (fam[n0 + 3 :] == -1).all()  # the popular text's copies
    assert (fam[:n0] == families[:n0]).all() and (frag[:n0] == fragments[:n0]).all()  # members stay
    # the copies would join if the family's shingles needed not be its own
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(refine, "FAMILY_EXCLUSIVE", 0.0)
        assert (
            refine.attach_to_families(fragments, families, indptr, hashes, 0.05, 10, 4, 0.5)[1][n0 + 3 :] == 0
        ).all()
    frag0, fam0 = refine.attach_to_families(fragments, families, indptr, hashes, 0.05, 10, 4, 0.0)
    assert fam0 is families and frag0 is fragments  # off
    # the ratio gate: 40 more members holding none of the scaffold (their zero scores are not the reference)
    # and six shingles of the family's own, each held by 20 of its 340 members (a real part, 5%): a noise row
    # holding the six (score 0.35) is under half the 10th-percentile member (0.74) and stays noise; with the
    # gate off it joins
    rows_g = [list(r) for r in rows[:n0]] + [[50_000 + m] for m in range(40)] + [list(range(800, 806))]
    for m in range(20):
        rows_g[m] = [*rows_g[m], *range(800, 806)]
    frag_g = np.array([*fragments[:n0], *([4] * 40), -1], np.int64)
    fam_g = np.where(frag_g >= 5, 1, np.where(frag_g >= 0, 0, -1))
    ip3, h3 = _sets(rows_g)
    assert refine.attach_to_families(frag_g, fam_g, ip3, h3, 0.05, 10, 4, 0.5)[1][-1] == -1
    assert refine.attach_to_families(frag_g, fam_g, ip3, h3, 0.05, 10, 4, 1e-9)[1][-1] == 0
    # noise that touches no family's scaffold: nothing moves (an empty product)
    lone = [list(range(40_000 + 10 * i, 40_005 + 10 * i)) for i in range(3)]
    ip2, h2 = _sets(rows[:n0] + lone)
    f2, fam2 = refine.attach_to_families(fragments[: n0 + 3], families[: n0 + 3], ip2, h2, 0.05, 10, 4, 0.5)
    assert fam2[n0:].tolist() == [-1, -1, -1] and f2[n0:].tolist() == [-1, -1, -1]


def test_noise_of_a_minority_variant_joins_its_fragment_by_that_fragments_own_measure():
    """Family 0: a main scaffold in five fragments of 60 (as above) and a minority variant, fragment 6: 20
    members holding its own six shingles (5.5% of the family: each a scaffold shingle of share 0.055). A noise
    row with five of those six scores 0.28, under half the family's 10th-percentile member (the main
    variant's, 0.74): left out by the family's measure. Measured against fragment 6's own members (0.33) it
    joins, in fragment 6. A fragment whose members mostly hold none of the scaffold (ordinary prompts that
    joined the family) gives no such measure: a row whose best fragment it is stays noise."""
    from clusterer.clustering import refine

    rows, fragments = [], []
    for f in range(5):
        for m in range(60):
            rows.append([*(100 * f + i for i in range(1, 7) if i != 1 + m % 6), 10_000 + 100 * f + m])
            fragments.append(f)
    minority = list(range(600, 606))
    rows += [[*minority, 20_000 + m] for m in range(20)]
    fragments += [6] * 20
    rows.append([*minority[:5], *range(30_000, 30_100)])  # a minority-variant prompt left as noise
    fragments.append(-1)
    fragments = np.array(fragments, np.int64)
    families = np.where(fragments >= 0, 0, -1)
    indptr, hashes = _sets(rows)
    frag, fam = refine.attach_to_families(fragments, families, indptr, hashes, 0.05, 10, 4, 0.5)
    assert fam[-1] == 0 and frag[-1] == 6
    assert (fam[:-1] == families[:-1]).all() and (frag[:-1] == fragments[:-1]).all()
    # the same 20 minority members inside a fragment of 40 more rows holding nothing of the scaffold
    rows_c = rows[:-1] + [[40_000 + m] for m in range(40)] + [rows[-1]]
    frag_c = np.array([*fragments[:-1], *([6] * 40), -1], np.int64)
    fam_c = np.where(frag_c >= 0, 0, -1)
    ip, hs = _sets(rows_c)
    assert refine.attach_to_families(frag_c, fam_c, ip, hs, 0.05, 10, 4, 0.5)[1][-1] == -1
