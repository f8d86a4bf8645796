"""The forward SDEs against Monte-Carlo simulation, and the Gaussian-mixture targets against scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from probnum_jax import diffusion, problems

# (sde, time at which the marginal is checked)
SDES = [
    (diffusion.VPSDE(), 0.4),
    (diffusion.SubVPSDE(), 0.4),
    (diffusion.VESDE(sigma_min=0.01, sigma_max=5.0), 0.6),
    (diffusion.EDM(), 1.5),
]


@pytest.mark.parametrize(("sde", "t"), SDES, ids=lambda p: type(p).__name__ if not isinstance(p, float) else "")
def test_marginals_match_monte_carlo_forward_simulation(sde, t):
    """Euler-Maruyama paths of dx = a(t) x dt + g(t) dw from x0 reach N(alpha x0, sigma^2) at t."""
    x0, num_paths, num_steps = 1.5, 20_000, 1000
    h = t / num_steps

    @jax.jit
    def simulate(key):
        def step(x, inputs):
            s, k = inputs
            noise = jax.random.normal(k, x.shape)
            return x + h * sde.drift(x, s) + jnp.sqrt(h * sde.diffusion_squared(s)) * noise, None

        times = jnp.arange(num_steps) * h
        x, _ = jax.lax.scan(step, jnp.full(num_paths, x0), (times, jax.random.split(key, num_steps)))
        return x

    x = simulate(jax.random.key(0))
    mean, std = float(sde.marginal_mean(x0, t)), float(sde.marginal_std(t))
    # Monte-Carlo standard errors of the sample mean and std, plus O(h) discretisation bias.
    se_mean, se_std = std / np.sqrt(num_paths), std / np.sqrt(2 * num_paths)
    assert abs(float(x.mean()) - mean) < 4 * se_mean + 2 * h
    assert abs(float(x.std()) - std) < 4 * se_std + 2 * h * std


@pytest.mark.parametrize("sde", [s for s, _ in SDES], ids=lambda s: type(s).__name__)
def test_prior_matches_the_marginal_at_t_max_and_scipy(sde):
    x = jnp.asarray([0.3, -1.2, 2.0])
    expected = scipy.stats.norm(scale=sde.prior_std()).logpdf(np.asarray(x)).sum()
    np.testing.assert_allclose(sde.prior_log_prob(x), expected, rtol=1e-12)
    # the prior is the marginal at t_max up to the (vanishing) contribution of the data
    assert abs(float(sde.std(sde.t_max)) - sde.prior_std()) < 1e-2 * sde.prior_std()
    samples = sde.prior_sample(jax.random.key(0), (4000, 2))
    assert abs(float(samples.std()) / sde.prior_std() - 1) < 0.05


def test_probability_flow_is_drift_minus_half_g2_score():
    sde = diffusion.VPSDE()
    score = lambda x, t: -x  # noqa: E731  (the score of N(0, I))
    flow = sde.probability_flow(score)
    x, t = jnp.asarray([0.5, -1.0]), 0.3
    np.testing.assert_allclose(flow(t, x, None), sde.drift(x, t) + 0.5 * sde.diffusion_squared(t) * x)


def test_edm_time_grid_is_rho_spaced():
    sde = diffusion.EDM()
    grid = sde.time_grid(18)
    assert grid.shape == (19,) and float(grid[-1]) == 0.0
    np.testing.assert_allclose(grid[jnp.asarray([0, -2])], [sde.sigma_max, sde.sigma_min], rtol=1e-12)
    roots = grid[:-1] ** (1 / sde.rho)
    np.testing.assert_allclose(jnp.diff(roots), jnp.diff(roots)[0], rtol=1e-9)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: diffusion.VPSDE(beta_min=5.0, beta_max=1.0), "beta_min must be smaller than beta_max"),
        (lambda: diffusion.VPSDE(beta_min=1.0, beta_max=1.0), "beta_min must be smaller than beta_max"),
        (lambda: diffusion.SubVPSDE(beta_min=-0.1), "beta_min"),
        (lambda: diffusion.VESDE(sigma_min=0.0), "sigma_min"),
        (lambda: diffusion.VESDE(sigma_min=-1.0), "sigma_min"),
        (lambda: diffusion.VESDE(sigma_min=2.0, sigma_max=1.0), "sigma_min must be smaller than sigma_max"),
        (lambda: diffusion.EDM(sigma_data=0.0), "sigma_data"),
        (lambda: diffusion.VPSDE(t_min=0.0), "t_min"),
    ],
)
def test_invalid_sde_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_gaussian_mixture_density_and_score_match_scipy_and_autodiff():
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(3, 3, 3))
    covs = factors @ factors.transpose(0, 2, 1) + 0.1 * np.eye(3)
    gmm = problems.GaussianMixture(jnp.asarray([0.2, 0.5, 0.3]), jnp.asarray(rng.normal(size=(3, 3))), jnp.asarray(covs))
    x = jnp.asarray([0.2, -0.4, 1.0])
    expected = np.log(
        sum(
            float(w) * scipy.stats.multivariate_normal(np.asarray(m), np.asarray(c)).pdf(np.asarray(x))
            for w, m, c in zip(gmm.weights, gmm.means, gmm.covs)
        )
    )
    logp, grad = jax.jit(jax.value_and_grad(lambda y: gmm.log_prob(y)))(x)
    np.testing.assert_allclose(logp, expected, rtol=1e-10)
    np.testing.assert_allclose(jax.jit(lambda y: gmm.score(y))(x), grad, rtol=1e-8)


def test_diffused_gaussian_mixture_matches_monte_carlo_moments():
    gmm, sde, t = problems.gmm_ring(4), diffusion.VPSDE(), 0.3
    k0, k1 = jax.random.split(jax.random.key(1))
    x0 = jax.jit(lambda k: gmm.sample(k, 40_000))(k0)
    xt = sde.perturb(x0, t, jax.random.normal(k1, x0.shape))
    diffused = jax.jit(lambda s: gmm.diffuse(sde, s))(t)
    mean = diffused.weights @ diffused.means
    second = jnp.einsum("k,kij->ij", diffused.weights, diffused.covs + jnp.einsum("ki,kj->kij", diffused.means, diffused.means))
    np.testing.assert_allclose(xt.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(jnp.cov(xt.T), second - jnp.outer(mean, mean), atol=0.05)


def test_gaussian_mixture_shape_errors():
    with pytest.raises(ValueError, match="weights must have shape"):
        problems.GaussianMixture(jnp.ones(3) / 3, jnp.zeros((2, 2)), jnp.broadcast_to(jnp.eye(2), (2, 2, 2)))
    with pytest.raises(ValueError, match="covs must have shape"):
        problems.GaussianMixture(jnp.ones(2) / 2, jnp.zeros((2, 2)), jnp.broadcast_to(jnp.eye(3), (2, 3, 3)))
