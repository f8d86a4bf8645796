"""Samplers and likelihoods with the exact score of a Gaussian mixture (no training)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probnum_jax import diffusion, ode, problems

NUM = 400  # samples per sampler
GMM = problems.gmm_ring(4, radius=2.0, std=0.3)
VP = diffusion.VPSDE()
SCORES = {}


def exact_score(sde):
    """One score function per SDE, so that the jit caches of ``sample`` are shared across tests."""
    key = type(sde).__name__
    if key not in SCORES:
        SCORES[key] = GMM.score_fn(sde)
    return SCORES[key]


@pytest.fixture(scope="module")
def reference():
    """Two independent target samples: the SW between them is the floor a perfect sampler reaches."""
    k1, k2 = jax.random.split(jax.random.key(42))
    data = jax.jit(lambda k: GMM.sample(k, NUM))
    return data(k1), data(k2)


def sw(x, y):
    return float(diffusion.sliced_wasserstein(x, y, key=jax.random.key(7)))


SAMPLERS = [
    ("euler_maruyama", VP, dict(num_steps=300)),
    ("pc", VP, dict(num_steps=150)),
    ("heun", diffusion.EDM(), dict(num_steps=18)),
    (diffrax.Tsit5(), VP, dict(atol=1e-4, rtol=1e-4)),
    (ode.EK0(num_derivatives=2), VP, dict(atol=1e-4, rtol=1e-4)),
    pytest.param((ode.EK0(num_derivatives=2), diffusion.VESDE(), dict(atol=1e-4, rtol=1e-4)), marks=pytest.mark.slow),
    (ode.EK1(num_derivatives=2, factorisation="blockdiag"), diffusion.EDM(), dict(atol=1e-4, rtol=1e-4)),
]


def _id(case):
    solver, sde, _ = case
    name = solver if isinstance(solver, str) else type(solver).__name__
    return f"{name}-{type(sde).__name__}"


@pytest.mark.parametrize("case", SAMPLERS, ids=_id)
def test_samples_match_the_mixture_in_sliced_wasserstein(case, reference):
    """Threshold: 2x the SW between two independent exact samples of the same size.

    A correct sampler's SW to the reference is itself an SW between two
    independent samples (plus discretisation bias), so it fluctuates around
    the floor; 2x leaves room for that fluctuation but not for a wrong
    distribution: the prior samples, or the mixture with its modes shrunk
    halfway to the origin, land far above it (checked below).
    """
    solver, sde, kwargs = case
    x, info = diffusion.sample(exact_score(sde), sde, key=jax.random.key(0), shape=(2,),
                               num_samples=NUM, solver=solver, **kwargs)
    floor = sw(*reference)
    assert x.shape == (NUM, 2) and bool(jnp.all(info.result == ode.RESULTS.successful))
    assert sw(x, reference[0]) < 2 * floor
    if isinstance(solver, ode.AbstractSolver):
        assert info.std.shape == (NUM, 2) and bool(jnp.all(info.std > 0))
    if not isinstance(solver, str):  # adaptive: each sample chooses its own steps
        assert int(info.num_steps.max()) > int(info.num_steps.min())


def test_the_threshold_rejects_wrong_distributions(reference):
    floor = sw(*reference)
    prior = VP.prior_sample(jax.random.key(0), (NUM, 2))
    assert sw(prior, reference[0]) > 2 * floor
    assert sw(0.75 * reference[1], reference[0]) > 2 * floor


@pytest.fixture(scope="module")
def ek0_vs_reference():
    """The same prior noise through the probabilistic sampler and a tight Tsit5 reference solve."""
    score, kw = exact_score(VP), dict(key=jax.random.key(3), shape=(2,), num_samples=200)
    x, info = diffusion.sample(score, VP, solver=ode.EK0(num_derivatives=2), atol=1e-3, rtol=1e-3, **kw)
    x_ref, _ = diffusion.sample(score, VP, solver=diffrax.Tsit5(), atol=1e-10, rtol=1e-10,
                                max_steps=20_000, **kw)
    return x, info, x_ref


def test_probabilistic_std_is_calibrated_per_sample(ek0_vs_reference):
    x, info, x_ref = ek0_vs_reference
    err = jnp.linalg.norm(x - x_ref, axis=1)
    std = jnp.linalg.norm(info.std, axis=1)
    ratio = float(jnp.exp(jnp.mean(jnp.log(err / std))))
    print(f"geometric mean of |error| / std over 200 samples: {ratio:.3f}")
    assert 0.1 < ratio < 10


def test_nfe_is_counted_honestly():
    """Count the score calls with a host callback and compare with ``info.nfe``."""
    calls = []

    def counted_score(x, t):
        jax.debug.callback(lambda: calls.append(1))
        return GMM.score_fn(VP)(x, t)

    for solver in (diffrax.Tsit5(), ode.EK0(num_derivatives=2)):
        calls.clear()
        _, info = diffusion.sample(counted_score, VP, key=jax.random.key(1), shape=(2,), num_samples=1,
                                   solver=solver, atol=1e-3, rtol=1e-3)
        jax.effects_barrier()
        assert int(info.nfe[0]) == len(calls), type(solver).__name__


# ---- likelihood ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def likelihood_points():
    x = jax.jit(lambda k: GMM.sample(k, 12))(jax.random.key(5))
    exact = jax.jit(jax.vmap(lambda y: GMM.diffuse(VP, VP.t_min).log_prob(y)))(x)
    return x, exact


def test_exact_trace_likelihood_matches_the_exact_density_within_its_std(likelihood_points):
    x, exact = likelihood_points
    logp, info = diffusion.log_likelihood(exact_score(VP), VP, x, key=jax.random.key(0), trace="exact",
                                          atol=1e-4, rtol=1e-4)
    err = jnp.abs(logp - exact)
    print(f"max |error| {float(err.max()):.2e}, median std {float(jnp.median(info.std)):.2e}")
    assert float(jnp.max(err)) < 1e-2
    assert float(jnp.mean(err < 3 * info.std)) >= 0.9
    np.testing.assert_array_equal(info.mc_std, 0.0)


def test_hutchinson_likelihood_matches_within_its_combined_uncertainty(likelihood_points):
    x, exact = likelihood_points
    logp, info = diffusion.log_likelihood(exact_score(VP), VP, x, key=jax.random.key(0), num_probes=8,
                                          atol=1e-4, rtol=1e-4)
    total = jnp.sqrt(info.std**2 + info.mc_std**2)
    assert bool(jnp.all(info.mc_std > info.std))  # the probes dominate at this tolerance
    assert float(jnp.mean(jnp.abs(logp - exact) < 3 * total)) >= 0.8


def test_bits_per_dim():
    logp = jnp.asarray(-100.0)
    np.testing.assert_allclose(diffusion.bits_per_dim(logp, 64), 100 / (64 * np.log(2)))
    # 8-bit data in [-1, 1]: each bin has width 2/256, which adds log2(128) = 7 bits
    np.testing.assert_allclose(diffusion.bits_per_dim(logp, 64, bin_width=2 / 256), 100 / (64 * np.log(2)) + 7)


# ---- bad input -------------------------------------------------------------------------------


def test_wrong_score_output_shape_raises():
    with pytest.raises(ValueError, match="score_fn.*sample shape"):
        diffusion.sample(lambda x, t: x[:1], VP, key=jax.random.key(0), shape=(2,), num_samples=4)
    with pytest.raises(ValueError, match="score_fn.*sample shape"):
        diffusion.log_likelihood(lambda x, t: jnp.sum(x), VP, jnp.ones((3, 2)), key=jax.random.key(0))


@pytest.mark.parametrize("num_samples", [0, -1, 2.0])
def test_num_samples_must_be_a_positive_int(num_samples):
    with pytest.raises(ValueError, match="num_samples"):
        diffusion.sample(exact_score(VP), VP, key=jax.random.key(0), shape=(2,), num_samples=num_samples)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(solver="rk4"), "solver must be one of"),
        (dict(solver=diffrax.Tsit5(), atol=0.0), "atol"),
        (dict(solver=ode.EK0(), rtol=-1.0), "rtol"),
        (dict(solver="heun", num_steps=1), "num_steps"),
    ],
)
def test_bad_sampler_configuration_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        diffusion.sample(exact_score(VP), VP, key=jax.random.key(0), shape=(2,), num_samples=2, **kwargs)


def test_nonfinite_score_is_reported_and_raises():
    """A score that turns NaN below t = 0.5 must not come back as samples."""

    def broken(x, t):
        return jnp.where(t < 0.5, jnp.nan, -x)

    for solver in ("euler_maruyama", ode.EK0(num_derivatives=2)):
        _, info = diffusion.sample(broken, VP, key=jax.random.key(0), shape=(2,), num_samples=3,
                                   solver=solver, num_steps=20, throw=False)
        # the fixed-step samplers see NaN samples; the filter sees a NaN error estimate and its
        # step size collapses: both are failures, reported per sample and raised with throw=True
        expected = ode.RESULTS.nonfinite if solver == "euler_maruyama" else ode.RESULTS.step_size_too_small
        assert bool(jnp.all(info.result == expected)), solver
        with pytest.raises(Exception, match="non-finite|step size fell below"):
            diffusion.sample(broken, VP, key=jax.random.key(0), shape=(2,), num_samples=3,
                             solver=solver, num_steps=20)
