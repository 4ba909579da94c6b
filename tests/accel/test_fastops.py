import numpy as np
import pytest

from clusterer.accel import fastops


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.float64])
def test_fastops_match_numpy(dtype):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 50, 2000).astype(dtype)
    np.testing.assert_array_equal(fastops.unique(a), np.unique(a))
    u, c = fastops.unique_counts(a)
    u2, c2 = np.unique(a, return_counts=True)
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(c, c2)
    u, f = fastops.unique_first(a)
    u2, f2 = np.unique(a, return_index=True)
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(f, f2)
    u, f, inv = fastops.unique_first_inverse(a)
    u2, f2, inv2 = np.unique(a, return_index=True, return_inverse=True)
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(f, f2)
    np.testing.assert_array_equal(inv, inv2.ravel())
    u, inv = fastops.unique_inverse(a)
    u2, inv2 = np.unique(a, return_inverse=True)
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(inv, inv2.ravel())
    b = rng.random(2000)
    c3 = rng.integers(0, 5, 2000)
    np.testing.assert_array_equal(fastops.lexsort(b, a), np.lexsort((b, a)))
    np.testing.assert_array_equal(fastops.lexsort(c3, -b, a), np.lexsort((c3, -b, a)))


def test_fastops_strings_and_empty():
    a = np.array(["b", "a", "c", "a"], dtype=object)
    u, inv = fastops.unique_inverse(a)
    assert list(u) == ["a", "b", "c"] and inv.tolist() == [1, 0, 2, 0]
    assert len(fastops.unique(np.zeros(0, np.int64))) == 0
    assert fastops.unique_counts(np.zeros(0, np.int64))[1].shape == (0,)
