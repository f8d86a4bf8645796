"""Bad input raises a clear error naming the argument; failures inside jit go to sol.result."""

import jax
import jax.numpy as jnp
import pytest

import probnum_jax as pnx


def decay(t, y, args):
    return -y


SOLVER = pnx.ode.EK0(num_derivatives=2)


def _solve(y0=jnp.ones(2), **kwargs):
    options = dict(t0=0.0, t1=1.0, solver=SOLVER)
    options.update(kwargs)
    f = options.pop("f", decay)
    return pnx.ode.solve(f, y0, **options)


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
def test_nonfinite_initial_value(bad):
    with pytest.raises(ValueError, match="y0 must be finite"):
        _solve(jnp.array([1.0, bad]))


def test_nonfinite_initial_value_under_jit_sets_result():
    @jax.jit
    def run(y0):
        return _solve(y0, throw=False).result

    assert run(jnp.array([1.0, jnp.nan])) == pnx.ode.RESULTS.invalid_input
    with pytest.raises(Exception, match="Invalid input"):
        jax.jit(lambda y0: _solve(y0).mean)(jnp.array([1.0, jnp.nan]))


def test_y0_must_be_a_vector():
    with pytest.raises(ValueError, match="y0 must be a 1-D array"):
        _solve(jnp.ones((2, 2)))


@pytest.mark.parametrize("t1", [1.0, 0.5])
def test_t1_not_after_t0(t1):
    with pytest.raises(ValueError, match="t1 must be greater than t0"):
        _solve(t0=1.0, t1=t1)


@pytest.mark.parametrize("name", ["atol", "rtol"])
@pytest.mark.parametrize("value", [0.0, -1e-6])
def test_nonpositive_tolerances(name, value):
    with pytest.raises(ValueError, match=f"{name} must be > 0"):
        _solve(**{name: value})


@pytest.mark.parametrize("q", [0, -1, 2.5])
def test_num_derivatives_below_one(q):
    with pytest.raises(ValueError, match="num_derivatives must be an int >= 1"):
        pnx.ode.EK1(num_derivatives=q)


def test_unknown_options():
    with pytest.raises(ValueError, match="factorisation must be one of"):
        pnx.ode.EK1(factorisation="isotropic")
    with pytest.raises(ValueError, match="calibration must be one of"):
        pnx.ode.EK0(calibration="global")
    with pytest.raises(ValueError, match="strategy must be one of"):
        pnx.ode.EK0(strategy="rts")


def test_vector_field_with_wrong_shape():
    with pytest.raises(ValueError, match=r"f\(t0, y0, args\) must return an array of y0's shape"):
        _solve(f=lambda t, y, a: jnp.ones(3))


def test_vector_field_with_wrong_dtype():
    with pytest.raises(TypeError, match="must return y0's dtype"):
        _solve(f=lambda t, y, a: (-y).astype(jnp.float32))


def test_vector_field_with_wrong_signature():
    with pytest.raises(TypeError, match=r"f\(t, y, args\)"):
        _solve(f=lambda t, y: -y)


@pytest.mark.parametrize(
    "save_at, match",
    [
        (jnp.array([0.5, 0.2]), "strictly increasing"),
        (jnp.array([0.2, 0.2]), "strictly increasing"),
        (jnp.array([0.0, 1.5]), r"save_at must lie in \[t0, t1\]"),
        (jnp.array([-0.1, 0.5]), r"save_at must lie in \[t0, t1\]"),
    ],
)
def test_bad_save_at(save_at, match):
    with pytest.raises(ValueError, match=match):
        _solve(save_at=save_at)


def test_max_steps_exhausted():
    sol = _solve(max_steps=5, throw=False, atol=1e-10, rtol=1e-10)
    assert sol.result == pnx.ode.RESULTS.max_steps_reached
    with pytest.raises(Exception, match="maximum number of steps"):
        _solve(max_steps=5, atol=1e-10, rtol=1e-10)


@pytest.mark.slow
def test_blow_up_is_reported():
    """y' = y^2, y(0) = 1 has a singularity at t = 1."""
    def f(t, y, args):
        return y**2

    sol = pnx.ode.solve(f, jnp.ones(1), t0=0.0, t1=2.0, solver=SOLVER, throw=False, max_steps=2_000)
    # relative tolerances let the step shrink geometrically towards t = 1, so which limit trips
    # first (step size, max_steps, overflow) depends on max_steps; any of them is a clear failure
    assert sol.result != pnx.ode.RESULTS.successful
    assert float(sol.mean[0, 0]) == 1.0
    assert jnp.isnan(sol.mean[-1, 0])  # t1 was never reached: no stale value
    with pytest.raises(Exception, match="step size fell below|non-finite|maximum number of steps"):
        pnx.ode.solve(f, jnp.ones(1), t0=0.0, t1=2.0, solver=SOLVER, max_steps=2_000)


def test_sample_needs_a_smoother():
    with pytest.raises(ValueError, match="strategy='smoother' or 'fixedpoint'"):
        _solve().sample(jax.random.PRNGKey(0), 2)
