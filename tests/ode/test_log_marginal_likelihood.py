"""``ode.log_marginal_likelihood``: closed-form reference, gradients, parameter recovery, errors, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.stats import norm

import probnum_jax as pnx

OBS_STD = 0.1
THETA = jnp.array([0.3, 2.0])  # decay rate, angular frequency
Y0 = jnp.array([1.0, 0.5])
T_DATA = jnp.linspace(0.0, 3.0, 7)
NUM_STEPS = 8  # per data interval: one static value, so the tests share compiled functions


def damped_rotation(t, y, theta):
    a, b = theta[0], theta[1]
    return jnp.array([-a * y[0] - b * y[1], b * y[0] - a * y[1]])


def damped_rotation_solution(t, y0, theta):
    a, b = np.asarray(theta)
    t = np.asarray(t)[:, None]
    c, s = np.cos(b * t), np.sin(b * t)
    y0 = np.asarray(y0)
    return np.exp(-a * t) * np.concatenate([c * y0[0] - s * y0[1], s * y0[0] + c * y0[1]], axis=1)


@pytest.fixture(scope="module")
def linear_data():
    exact = damped_rotation_solution(T_DATA, Y0, THETA)
    noise = OBS_STD * np.random.default_rng(0).standard_normal(exact.shape)
    return exact, jnp.asarray(exact + noise)


SOLVERS = {
    "EK0-isotropic": pnx.ode.EK0(num_derivatives=3),
    "EK0-blockdiag-mle": pnx.ode.EK0(num_derivatives=3, factorisation="blockdiag", calibration="mle"),
    "EK1-dense": pnx.ode.EK1(num_derivatives=3),
}


def lml(solver, theta, y0, obs_std, y_data):
    return pnx.ode.log_marginal_likelihood(
        damped_rotation, y0, T_DATA, y_data, obs_std, solver=solver, args=theta, num_steps_between=NUM_STEPS
    )


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "EK0-isotropic" else n for n in sorted(SOLVERS)]
)
def test_matches_closed_form_gaussian_log_density(name, linear_data):
    # With small steps the solver's posterior is (almost) exact, and the likelihood is
    # the Gaussian log-density of the data around the exact solution (measured differences
    # at 8 steps per interval: 4e-4 for EK0 to 1e-3 for EK1 with dynamic calibration).
    exact, y_data = linear_data
    value = lml(SOLVERS[name], THETA, Y0, jnp.asarray(OBS_STD), y_data)
    reference = np.sum(norm.logpdf(np.asarray(y_data), exact, OBS_STD))
    assert value.shape == ()
    assert abs(float(value) - reference) < 5e-3, (float(value), reference)


def test_initial_time_before_first_datum(linear_data):
    exact, y_data = linear_data
    t_data, y_data = T_DATA[1:], y_data[1:]
    solver = SOLVERS["EK0-isotropic"]
    value = pnx.ode.log_marginal_likelihood(
        damped_rotation, Y0, t_data, y_data, jnp.asarray(OBS_STD), solver=solver, args=THETA,
        t0=0.0, num_steps_between=NUM_STEPS,
    )
    reference = np.sum(norm.logpdf(np.asarray(y_data), exact[1:], OBS_STD))
    assert abs(float(value) - reference) < 1e-3


def test_gradient_matches_finite_differences(linear_data):
    _, y_data = linear_data
    solver = SOLVERS["EK1-dense"]
    obs_std = jnp.asarray(OBS_STD)
    grads = jax.grad(lambda *p: lml(solver, *p, y_data), argnums=(0, 1, 2))(THETA, Y0, obs_std)
    flat = np.concatenate([np.asarray(grads[0]), np.asarray(grads[1]), np.asarray(grads[2])[None]])

    def value(p):
        return float(lml(solver, jnp.asarray(p[:2]), jnp.asarray(p[2:4]), jnp.asarray(p[4]), y_data))

    p0 = np.concatenate([np.asarray(THETA), np.asarray(Y0), [OBS_STD]])
    eps = 1e-6
    fd = np.array([(value(p0 + eps * e) - value(p0 - eps * e)) / (2 * eps) for e in np.eye(p0.size)])
    np.testing.assert_allclose(flat, fd, rtol=1e-5, atol=1e-4 * np.max(np.abs(fd)))


@pytest.fixture(scope="module")
def lotka_volterra_data():
    ivp = pnx.problems.lotka_volterra(t1=10.0)
    t_data = np.linspace(ivp.t0, ivp.t1, 21)

    def f(t, y):
        a, b, c, d = ivp.args
        return [a * y[0] - b * y[0] * y[1], -c * y[1] + d * y[0] * y[1]]

    sol = solve_ivp(f, (ivp.t0, ivp.t1), np.asarray(ivp.y0), t_eval=t_data, rtol=1e-10, atol=1e-10)
    y_data = sol.y.T + 0.5 * np.random.default_rng(1).standard_normal(sol.y.T.shape)
    solver = pnx.ode.EK0(num_derivatives=3)

    def lml_lv(theta):
        return pnx.ode.log_marginal_likelihood(
            ivp.vector_field, ivp.y0, t_data, y_data, 0.5, solver=solver, args=theta, num_steps_between=5
        )

    return ivp, lml_lv


def test_lotka_volterra_true_parameters_are_most_likely(lotka_volterra_data):
    ivp, lml_lv = lotka_volterra_data
    theta = jnp.asarray(ivp.args)
    at_truth = float(lml_lv(theta))
    assert np.isfinite(at_truth)
    for i in range(4):
        for factor in (0.9, 1.1):
            perturbed = theta.at[i].multiply(factor)
            assert float(lml_lv(perturbed)) < at_truth - 1.0, (i, factor)
    # Along a 1-D slice of the prey growth rate, the maximiser is within 2% of the truth.
    factors = np.linspace(0.9, 1.1, 21)
    values = [float(lml_lv(theta.at[0].multiply(s))) for s in factors]
    assert abs(factors[int(np.argmax(values))] - 1.0) <= 0.02


def test_jit_and_traced_obs_std(linear_data):
    _, y_data = linear_data
    solver = SOLVERS["EK0-isotropic"]
    jitted = jax.jit(lambda theta, obs_std: lml(solver, theta, Y0, obs_std, y_data))
    eager = lml(solver, THETA, Y0, jnp.asarray(OBS_STD), y_data)
    np.testing.assert_allclose(jitted(THETA, OBS_STD), eager, rtol=1e-12)
    # A traced, non-positive obs_std cannot raise; it gives NaN, never a number.
    assert jnp.isnan(jitted(THETA, -OBS_STD))


BAD_INPUTS = [
    ({"obs_std": 0.0}, "obs_std"),
    ({"obs_std": -0.1}, "obs_std"),
    ({"obs_std": float("nan")}, "obs_std"),
    ({"obs_std": float("inf")}, "obs_std"),
    ({"obs_std": jnp.ones(2)}, "obs_std"),
    ({"t_data": T_DATA[::-1]}, "t_data"),
    ({"t_data": T_DATA.at[3].set(T_DATA[2])}, "t_data"),
    ({"t_data": T_DATA, "t0": 0.5}, "t_data"),
    ({"t_data": T_DATA[None]}, "t_data"),
    ({"y_data": jnp.ones((7, 3))}, "y_data"),
    ({"y_data": jnp.ones((6, 2))}, "y_data"),
    ({"y_data": jnp.ones(7)}, "y_data"),
    ({"y_data": jnp.ones((7, 2)).at[2, 1].set(jnp.nan)}, "y_data"),
    ({"num_steps_between": 0}, "num_steps_between"),
]


@pytest.mark.parametrize(("change", "name"), BAD_INPUTS)
def test_bad_input_raises_naming_the_argument(change, name):
    kwargs = {"t_data": T_DATA, "y_data": jnp.ones((7, 2)), "obs_std": OBS_STD} | change
    with pytest.raises(ValueError, match=name):
        pnx.ode.log_marginal_likelihood(damped_rotation, Y0, solver=SOLVERS["EK0-isotropic"], args=THETA, **kwargs)


@pytest.mark.slow
def test_float32(linear_data):
    exact, y_data = linear_data
    value = lml(SOLVERS["EK0-isotropic"], THETA.astype(jnp.float32), Y0.astype(jnp.float32),
                jnp.float32(OBS_STD), y_data.astype(jnp.float32))
    assert value.dtype == jnp.float32
    reference = np.sum(norm.logpdf(np.asarray(y_data), exact, OBS_STD))
    assert abs(float(value) - reference) < 1e-2, (float(value), reference)
