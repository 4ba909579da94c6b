import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterer.accel import hashing, reference
from clusterer.config import SkeletonConfig
from clusterer.graph.lsh import Signatures, pair_overlap, signatures
from clusterer.synth import overlap_case
from clusterer.text.skeleton import Skeletons


def _exact_jaccard(indptr, hashes, a, b):
    sa = set(hashes[indptr[a] : indptr[a + 1]].tolist())
    sb = set(hashes[indptr[b] : indptr[b + 1]].tolist())
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def test_minhash_estimates_jaccard():
    indptr, hashes, seeds, i, j = overlap_case(0, num_perm=256)
    sig = reference.minhash_signatures(indptr, hashes, seeds)
    got = reference.skeleton_overlap(sig, np.diff(indptr).astype(np.int32), i, j)[:, 0]
    want = np.array([_exact_jaccard(indptr, hashes, a, b) for a, b in zip(i, j, strict=True)])
    assert np.abs(got - want).mean() < 0.03


def test_empty_rows_have_empty_signature_and_zero_overlap():
    indptr, hashes, seeds, i, j = overlap_case(1)
    sig = reference.minhash_signatures(indptr, hashes, seeds)
    assert (sig[:5] == reference.EMPTY).all()
    ov = reference.skeleton_overlap(sig, np.diff(indptr).astype(np.int32), np.arange(5), np.arange(5))
    assert (ov == 0).all()


@settings(max_examples=60, deadline=None)
@given(
    a=st.sets(st.integers(0, 2**63 - 1), max_size=30),
    b=st.sets(st.integers(0, 2**63 - 1), max_size=30),
    seed=st.integers(0, 1000),
)
def test_overlap_invariants(a, b, seed):
    rows = [sorted(a), sorted(b), sorted(a)]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    hashes = np.array([h for r in rows for h in r], dtype=np.uint64)
    sig = reference.minhash_signatures(indptr, hashes, hashing.perm_seeds(64, seed))
    sizes = np.diff(indptr).astype(np.int32)
    ov = reference.skeleton_overlap(sig, sizes, np.array([0, 1, 0]), np.array([1, 0, 2]))
    np.testing.assert_array_equal(ov[0], ov[1])  # symmetric
    assert ((ov >= 0) & (ov <= 1)).all()
    if a:
        np.testing.assert_array_equal(ov[2], [1.0, 1.0])  # identical skeletons
    else:
        np.testing.assert_array_equal(ov[2], [0.0, 0.0])


def test_empty_input_gives_empty_output():
    sig = np.zeros((0, 64), np.uint32)
    out = reference.skeleton_overlap(sig, np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert out.shape == (0, 2)
    assert reference.minhash_signatures(np.zeros(1, np.int64), np.zeros(0, np.uint64), np.ones(8, np.uint64)).shape == (
        0,
        8,
    )


def test_stage_functions_use_the_backend(backend):
    indptr, hashes, _, i, j = overlap_case(2)
    sk = Skeletons(
        indptr=indptr,
        hashes=hashes,
        n_shingles=np.diff(indptr).astype(np.int32),
        coverage=np.zeros(len(indptr) - 1, np.float32),
        view=None,
        slot_indptr=np.zeros(len(indptr), np.int64),
        slot_tokens=np.zeros(0, np.uint32),
    )
    sigs = signatures(sk, SkeletonConfig(), seed=3, backend=backend)
    ref = reference.minhash_signatures(indptr, hashes, hashing.perm_seeds(128, 3))
    np.testing.assert_array_equal(sigs.sig, ref)
    got = pair_overlap(Signatures(sig=ref, sizes=sk.sizes), i, j, backend)
    np.testing.assert_allclose(got, reference.skeleton_overlap(ref, sk.sizes, i, j), rtol=0, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernels_match_reference(seed):
    from clusterer.accel import kernels

    indptr, hashes, seeds, i, j = overlap_case(seed, n_prompts=400, n_pairs=3000)
    sig_gpu = kernels.minhash_signatures(indptr, hashes, seeds).get()
    sig_ref = reference.minhash_signatures(indptr, hashes, seeds)
    np.testing.assert_array_equal(sig_gpu, sig_ref)
    sizes = np.diff(indptr).astype(np.int32)
    got = kernels.skeleton_overlap(sig_ref, sizes, i, j).get()
    np.testing.assert_allclose(got, reference.skeleton_overlap(sig_ref, sizes, i, j), rtol=0, atol=1e-6)


@pytest.mark.gpu
def test_kernels_compile():
    from clusterer.accel import kernels

    assert set(kernels.compile_all().values()) == {"ok"}


def test_gpu_backend_without_cupy_runs_the_kernels_on_the_cpu(monkeypatch, caplog):
    """torch sees a GPU but CuPy is missing or broken: signatures and overlaps come from the Numba references
    (the same values), with one warning, instead of an ImportError halfway through a run."""
    import logging

    from clusterer.accel import backend
    from clusterer.accel.backend import Backend

    monkeypatch.setattr(backend, "cupy_available", lambda: False)
    backend._warn_no_cupy.cache_clear()
    rng = np.random.default_rng(3)
    sizes = rng.integers(3, 40, 50)
    indptr = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    hashes = np.concatenate([np.sort(rng.choice(500, s, replace=False)) for s in sizes]).astype(np.uint64)
    sk = Skeletons(
        indptr=indptr,
        hashes=hashes,
        n_shingles=sizes.astype(np.int32),
        coverage=np.ones(50, np.float32),
        view=None,
        slot_indptr=np.zeros(51, np.int64),
        slot_tokens=np.zeros(0, np.uint32),
    )
    cfg = SkeletonConfig()
    with caplog.at_level(logging.WARNING, logger="clusterer"):
        gpu = signatures(sk, cfg, 7, Backend.GPU)
        i, j = np.arange(0, 49, dtype=np.int64), np.arange(1, 50, dtype=np.int64)
        got = pair_overlap(gpu, i, j, Backend.GPU)
    cpu = signatures(sk, cfg, 7, Backend.CPU)
    assert np.array_equal(gpu.sig, cpu.sig)
    assert np.array_equal(got, pair_overlap(cpu, i, j, Backend.CPU))
    assert sum("CuPy" in r.getMessage() for r in caplog.records) == 1
