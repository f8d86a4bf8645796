"""Space-filling designs: Sobol against scipy, scrambling keeps the net property, Latin hypercubes."""

import jax
import numpy as np
import pytest
from scipy.stats import qmc

from probnum_jax.quad._designs import latin_hypercube_points, sobol_integers, sobol_points

sobol_integers = jax.jit(sobol_integers, static_argnums=(0, 1))
sobol_points = jax.jit(sobol_points, static_argnums=(0, 1))
latin_hypercube_points = jax.jit(latin_hypercube_points, static_argnums=(0, 1))


@pytest.mark.parametrize("dim", [1, 3, 32])
def test_unscrambled_sobol_matches_scipy(dim):
    ours = np.asarray(sobol_integers(256, dim, None)).astype(np.float64) / 2**32
    np.testing.assert_array_equal(ours, qmc.Sobol(dim, scramble=False, bits=32).random_base2(8))


def test_scrambled_sobol_is_a_net_and_key_dependent():
    a = np.asarray(sobol_points(128, 4, key=jax.random.key(0)))
    b = np.asarray(sobol_points(128, 4, key=jax.random.key(1)))
    assert not np.allclose(a, b)
    assert np.all((a > 0) & (a < 1))
    # (0, m, 1)-net in each coordinate: one point per interval of width 1/128.
    assert np.all(np.sort(np.floor(a * 128), axis=0) == np.arange(128)[:, None])
    assert qmc.discrepancy(a) < 0.2 * qmc.discrepancy(np.random.default_rng(0).uniform(size=(128, 4)))


def test_latin_hypercube_is_stratified():
    x = np.asarray(latin_hypercube_points(50, 3, key=jax.random.key(2)))
    assert np.all(np.sort(np.floor(x * 50), axis=0) == np.arange(50)[:, None])


def test_sobol_dimension_limit():
    with pytest.raises(ValueError, match="Sobol designs"):
        sobol_integers(8, 33, None)
