import numpy as np
import polars as pl

from clusterer.accel.backend import Backend
from clusterer.config import SkeletonConfig
from clusterer.graph.lsh import signatures
from clusterer.text.skeleton import build_skeletons, shingle_sets
from clusterer.text.templates import describe_templates

LONG = "please convert the text below into an internal memo with a subject line and three action items for the team: {}"
SHORT = "memo rewrite subject up to four paragraphs action items {}"
ODD = "translate this sentence into formal french for a legal notice please {}"


def _day():
    words = [f"payload{i} topic{i * 7} item{i * 13}" for i in range(60)]
    texts = [LONG.format(w) for w in words[:40]] + [SHORT.format(w) for w in words[40:52]] + [ODD.format("x y z")] * 2
    # one cluster of three template groups: the long variant, the short one, and two rows of a third
    groups = np.array([0] * 40 + [1] * 12 + [2] * 2, np.int64)
    return pl.Series(texts), groups


def test_each_template_group_of_a_cluster_keeps_its_own_scaffold():
    texts, groups = _day()
    cfg = SkeletonConfig(min_df=2, max_df=1.0)  # a day of one campaign: its scaffold is in most rows
    sk = build_skeletons(texts, cfg)
    sigs = signatures(sk, cfg, 0, Backend.CPU)
    labels = np.zeros(len(texts), np.int64)
    t = describe_templates(labels, texts, sk, sigs, cfg, 0, groups)
    # the largest group first; the group of two rows has too few to keep a scaffold
    assert t.variant_groups == [[0, 1]] and len(t.variants[0]) == 2
    indptr, hashes = shingle_sets(texts, cfg.ngram)
    short_row = hashes[indptr[45] : indptr[46]]
    long_row = hashes[indptr[0] : indptr[1]]
    long_v, short_v = t.variants[0]
    # a short-variant prompt holds all of its own scaffold and little of the cluster's whole set
    assert np.isin(short_v, short_row).all() and not np.isin(short_v, long_row).all()
    assert np.isin(long_v, long_row).all()
    assert np.isin(short_v, short_row).sum() / len(t.common[0]) < 0.5
    # without groups the cluster is one variant
    one = describe_templates(labels, texts, sk, sigs, cfg, 0)
    assert one.variant_groups == [[0]] and len(one.variants[0]) == 1
