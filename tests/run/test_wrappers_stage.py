"""The batch run's wrappers stage: how groups enter the clustering (``_with_groups``) and keep names."""

import numpy as np

from clusterer.clustering.families import Grouping
from clusterer.clustering.hdbscan import Clusters
from clusterer.config import RunConfig
from clusterer.run.stages import Clustering, _owners_keep_keys, _with_groups
from clusterer.text.templates import Templates


def _clustering() -> Clustering:
    # rows 0-2 family 0, 3-5 family 1 (flagged), 6-8 family 2, 9-13 noise
    fam = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1, -1, -1, -1, -1], np.int64)
    n = len(fam)
    grouping = Grouping(
        labels=fam,
        fragments=3,
        families=3,
        template_joins=0,
        behaviour_joins=0,
        language=["en", "de", "fr"],
        template_groups=fam.copy(),
        group_language=["en", "de", "fr"],
    )
    clusters = Clusters(fam.copy(), np.where(fam >= 0, 0.9, 0.0).astype(np.float32), np.ones(3))
    return Clustering(
        clusters,
        grouping,
        np.where(fam >= 0, 0.7, 0.0).astype(np.float32),
        np.where(fam >= 0, 6, 0).astype(np.int32),
        np.zeros(n, bool),
        fragments=fam.copy(),
    )


def test_groups_enter_as_new_families_or_join_the_family_that_owns_their_line():
    clu = _clustering()
    # group 0: rows 0 (out of family 0) and 9-10, a new family; group 1: rows 11-12, joins flagged family 1
    groups = np.array([0, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 1, 1, -1], np.int64)
    owned = np.array([-1, 1], np.int64)
    got, order = _with_groups(clu, groups, owned, RunConfig())
    fam = got.labels
    # renumbered by first row: the new family holds row 0, so it is 0; old family 0 (rows 1-2) is 1
    assert fam.tolist() == [0, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0, 2, 2, -1]
    assert order.tolist() == [3, 0, 1, 2]  # the new family was numbered 3 before renumbering
    assert got.grouping.language == ["", "en", "de", "fr"]
    assert got.grouping.families == 4 and got.grouping.fragments == 5
    member = groups >= 0
    assert (got.fit[member] == 1.0).all() and (got.fit[~member] == clu.fit[~member]).all()
    assert (got.shared[member] >= RunConfig().campaign.prompt_min_shared).all()
    assert (got.shared[~member] == clu.shared[~member]).all()
    assert not got.copies[member].any()
    assert (got.clusters.labels[member] == -1).all()
    assert (got.clusters.labels[~member] == clu.clusters.labels[~member]).all()
    # each group is a fragment of its own, new to the run
    frags = got.fragments
    assert len({int(frags[0]), int(frags[11])}) == 2 and min(frags[0], frags[11]) >= 3
    assert frags[9] == frags[0] and frags[12] == frags[11]
    assert len(got.grouping.group_language) == 5


def test_a_family_that_took_a_group_on_its_line_keeps_its_template_key():
    def templates(keys):
        k = len(keys)
        z = np.zeros(k, np.float32)
        return Templates(["t"] * k, z, z, list(keys), z, [np.zeros(0, np.uint64)] * k, [np.zeros(0, np.uint64)] * k)

    before = templates(["a", "b", "c"])
    after = templates(["n", "a", "b2", "c"])  # family 1 (before) is 2 now, and its frequent shingles moved
    order = np.array([3, 0, 1, 2], np.int64)
    kept = _owners_keep_keys(after, before, order, np.array([-1, 1], np.int64))
    assert kept.key == ["n", "a", "b", "c"]
    # a key another family already has is not taken twice
    clash = _owners_keep_keys(templates(["b", "a", "b2", "c"]), before, order, np.array([-1, 1], np.int64))
    assert clash.key == ["b", "a", "b2", "c"]
