"""Tests for the ODE test-problem zoo ``probnum_jax.problems``."""

import functools

import jax

# Harmless if tests/conftest.py already enables double precision.
jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

from probnum_jax import problems  # noqa: E402

# (id, factory, expected dimension)
PROBLEMS = [
    ("lotka_volterra", problems.lotka_volterra, 2),
    ("van_der_pol", problems.van_der_pol, 2),
    ("van_der_pol_stiff", functools.partial(problems.van_der_pol, mu=1e3), 2),
    ("fitzhugh_nagumo", problems.fitzhugh_nagumo, 2),
    ("lorenz63", problems.lorenz63, 3),
    ("logistic", problems.logistic, 1),
    ("pleiades", problems.pleiades, 28),
    ("hires", problems.hires, 8),
    ("robertson", problems.robertson, 3),
]
STIFF = {"van_der_pol_stiff", "hires", "robertson"}

parametrize_problems = pytest.mark.parametrize(
    "factory, dim",
    [pytest.param(f, d, id=name) for name, f, d in PROBLEMS],
)
parametrize_problem_names = pytest.mark.parametrize(
    "name", [name for name, _, _ in PROBLEMS]
)
FACTORIES = {name: f for name, f, _ in PROBLEMS}

# Reference values at t = 3 and t = 321.8122, from the Test Set for IVP solvers
# (F. Mazzia, C. Magherini, release 2.4, problems PLEI and HIRES).
PLEIADES_REFERENCE = np.array([
    0.3706139143970502e0, 0.3237284092057233e1, -0.3222559032418324e1,
    0.6597091455775310e0, 0.3425581707156584e0, 0.1562172101400631e1,
    -0.7003092922212495e0, -0.3943437585517392e1, -0.3271380973972550e1,
    0.5225081843456543e1, -0.2590612434977470e1, 0.1198213693392275e1,
    -0.2429682344935824e0, 0.1091449240428980e1, 0.3417003806314313e1,
    0.1354584501625501e1, -0.2590065597810775e1, 0.2025053734714242e1,
    -0.1155815100160448e1, -0.8072988170223021e0, 0.5952396354208710e0,
    -0.3741244961234010e1, 0.3773459685750630e0, 0.9386858869551073e0,
    0.3667922227200571e0, -0.3474046353808490e0, 0.2344915448180937e1,
    -0.1947020434263292e1,
])  # fmt: skip
HIRES_REFERENCE = np.array([
    0.7371312573325668e-3, 0.1442485726316185e-3, 0.5888729740967575e-4,
    0.1175651343283149e-2, 0.2386356198831331e-2, 0.6238968252742796e-2,
    0.2849998395185769e-2, 0.2850001604814231e-2,
])  # fmt: skip


# scipy tolerances (rtol = atol); tighter where a test compares to a reference.
TOLERANCES = {"logistic": 1e-12, "pleiades": 1e-12}


@functools.lru_cache(maxsize=None)
def _scipy_solution(name):
    """Solve problem `name` with scipy (DOP853 if non-stiff, else Radau).

    Cached, so every problem is solved only once per test session.
    """
    ivp = FACTORIES[name]()
    tol = TOLERANCES.get(name, 1e-10)
    f = jax.jit(lambda t, y: ivp.vector_field(t, y, ivp.args))
    stiff = name in STIFF
    kwargs = {}
    if stiff:
        jac = jax.jit(jax.jacfwd(lambda t, y: ivp.vector_field(t, y, ivp.args), 1))
        kwargs["jac"] = lambda t, y: np.asarray(jac(t, y))
    sol = solve_ivp(
        lambda t, y: np.asarray(f(t, y)),
        (ivp.t0, ivp.t1),
        np.asarray(ivp.y0),
        method="Radau" if stiff else "DOP853",
        rtol=tol,
        atol=tol,
        dense_output=True,
        **kwargs,
    )
    assert sol.success, sol.message
    return sol


# ---------------------------------------------------------------------------
# Generic properties of every problem
# ---------------------------------------------------------------------------


@parametrize_problems
def test_vector_field_shape_dtype_finite(factory, dim):
    ivp = factory()
    assert isinstance(ivp, problems.InitialValueProblem)
    assert ivp.y0.shape == (dim,)
    assert ivp.y0.dtype == jnp.float64
    assert ivp.t1 > ivp.t0
    dy = ivp.vector_field(ivp.t0, ivp.y0, ivp.args)
    assert dy.shape == ivp.y0.shape
    assert dy.dtype == ivp.y0.dtype
    assert jnp.all(jnp.isfinite(dy))
    # The problems are not at equilibrium initially.
    assert jnp.linalg.norm(dy) > 0.0


def _float32_mode():
    """Context manager that temporarily disables double precision."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(False)
    from jax.experimental import disable_x64  # older JAX versions

    return disable_x64()


@parametrize_problems
def test_vector_field_float32(factory, dim):
    with _float32_mode():
        ivp32 = factory()
        assert ivp32.y0.dtype == jnp.float32
        dy32 = jax.jit(ivp32.vector_field)(ivp32.t0, ivp32.y0, ivp32.args)
        assert dy32.shape == (dim,)
        assert dy32.dtype == jnp.float32
    ivp = factory()
    dy64 = ivp.vector_field(ivp.t0, ivp.y0, ivp.args)
    scale = float(jnp.max(jnp.abs(dy64)))
    np.testing.assert_allclose(dy32, dy64, rtol=1e-5, atol=1e-5 * scale)
    # A float32 state gives a float32 derivative even if args are float64.
    args64 = jax.tree_util.tree_map(jnp.float64, ivp.args)
    dy_mixed = jax.jit(ivp.vector_field)(ivp.t0, ivp.y0.astype(jnp.float32), args64)
    assert dy_mixed.dtype == jnp.float32


@parametrize_problems
def test_jit_vmap_jacfwd(factory, dim):
    ivp = factory()
    vf = functools.partial(ivp.vector_field, ivp.t0, args=ivp.args)
    y0 = np.asarray(ivp.y0)
    # Perturbations that keep every problem well defined (positive entries
    # stay positive, the Pleiades stars stay apart).
    ys = y0[None, :] * np.array([1.0, 1.01, 0.99])[:, None]
    # Central finite differences for the Jacobian.
    eps = 1e-6 * (1.0 + np.abs(y0))
    steps = np.eye(dim) * eps[None, :]
    y_fd = np.concatenate([y0 + steps, y0 - steps])

    # A single compilation covers jit, vmap and jacfwd (compiling is slow).
    @jax.jit
    def evaluate(y0, ys, y_fd):
        return vf(y0), jax.vmap(vf)(ys), jax.jacfwd(vf)(y0), jax.vmap(vf)(y_fd)

    jitted, batched, jac, f_fd = evaluate(y0, ys, y_fd)
    np.testing.assert_allclose(jitted, vf(ivp.y0), rtol=1e-12, atol=1e-14)

    assert batched.shape == (3, dim)
    for i in range(3):
        np.testing.assert_allclose(batched[i], vf(jnp.asarray(ys[i])), rtol=1e-12, atol=1e-14)

    assert jac.shape == (dim, dim)
    assert np.all(np.isfinite(jac))
    fd = (f_fd[:dim] - f_fd[dim:]).T / (2 * eps)
    np.testing.assert_allclose(jac, fd, rtol=1e-5, atol=1e-6 * (1.0 + np.max(np.abs(jac))))


@parametrize_problems
def test_problem_is_a_pytree(factory, dim):
    ivp = factory()

    @eqx.filter_jit
    def evaluate(problem):
        return problem.vector_field(problem.t0, problem.y0, problem.args)

    np.testing.assert_allclose(
        evaluate(ivp), ivp.vector_field(ivp.t0, ivp.y0, ivp.args), rtol=1e-12, atol=1e-14
    )
    leaves = jax.tree_util.tree_leaves(ivp)
    assert any(leaf is ivp.y0 for leaf in leaves)


@parametrize_problem_names
def test_scipy_solve_is_finite(name):
    ivp = FACTORIES[name]()
    assert ivp.stiff == (name in STIFF)
    sol = _scipy_solution(name)
    assert sol.t[-1] == pytest.approx(ivp.t1)
    assert np.all(np.isfinite(sol.y))
    # The solution moves away from the initial value (only slightly for the
    # stiff van der Pol oscillator, which stays on the slow manifold on [0, 2]).
    assert np.linalg.norm(sol.y[:, -1] - np.asarray(ivp.y0)) > 1e-4 * np.linalg.norm(ivp.y0)


# ---------------------------------------------------------------------------
# Problem-specific checks
# ---------------------------------------------------------------------------


def test_logistic_closed_form_matches_scipy():
    ivp = problems.logistic()
    assert ivp.solution is not None
    np.testing.assert_allclose(ivp.solution(ivp.t0), ivp.y0, rtol=1e-15)
    assert ivp.solution(1.0).shape == (1,)

    sol = _scipy_solution("logistic")
    ts = jnp.linspace(ivp.t0, ivp.t1, 50)
    closed = jax.vmap(ivp.solution)(ts)
    assert closed.shape == (50, 1)
    np.testing.assert_allclose(closed, sol.sol(np.asarray(ts)).T, rtol=1e-8)
    # Array-valued times are also supported.
    np.testing.assert_allclose(ivp.solution(ts), closed, rtol=1e-14)
    # The solution actually traverses the sigmoid.
    assert float(closed[-1, 0]) > 0.99


def test_logistic_closed_form_solves_the_ode():
    ivp = problems.logistic(y0=(0.3,), args=(1.7, 2.0), t0=0.5)
    ts = np.linspace(ivp.t0, ivp.t0 + 3.0, 7)

    @jax.jit
    def derivatives(ts):
        dsol = jax.vmap(jax.jacfwd(ivp.solution))(ts)
        vf = jax.vmap(lambda t: ivp.vector_field(t, ivp.solution(t), ivp.args))(ts)
        return dsol, vf

    dsol, vf = derivatives(ts)
    assert dsol.shape == vf.shape == (7, 1)
    np.testing.assert_allclose(dsol, vf, rtol=1e-12)


def test_robertson_conserves_mass():
    sol = _scipy_solution("robertson")
    np.testing.assert_allclose(np.sum(sol.y, axis=0), 1.0, atol=1e-6)
    # After the initial transient y2 is tiny but positive (quasi-stationary).
    assert 0.0 < sol.y[1, -1] < 1e-5


def test_robertson_vector_field_conserves_mass():
    ivp = problems.robertson()
    y = jnp.array([0.7, 2e-5, 0.29998])
    assert abs(float(jnp.sum(ivp.vector_field(0.0, y, ivp.args)))) < 1e-12


def test_pleiades_matches_reference():
    sol = _scipy_solution("pleiades")
    np.testing.assert_allclose(sol.y[:, -1], PLEIADES_REFERENCE, rtol=0.0, atol=1e-8)


def _pleiades_energy(y):
    x, z, vx, vz = y[0:7], y[7:14], y[14:21], y[21:28]
    m = np.arange(1.0, 8.0)
    kinetic = 0.5 * np.sum(m * (vx**2 + vz**2))
    potential = 0.0
    for i in range(7):
        for j in range(i + 1, 7):
            potential -= m[i] * m[j] / np.hypot(x[i] - x[j], z[i] - z[j])
    return kinetic + potential


def test_pleiades_conserves_energy():
    sol = _scipy_solution("pleiades")
    energies = np.array([_pleiades_energy(y) for y in sol.y.T])
    np.testing.assert_allclose(energies, energies[0], rtol=1e-7)


def test_hires_matches_reference():
    sol = _scipy_solution("hires")
    np.testing.assert_allclose(sol.y[:, -1], HIRES_REFERENCE, rtol=1e-7)


def test_lotka_volterra_conserves_first_integral():
    ivp = problems.lotka_volterra()
    a, b, c, d = ivp.args
    sol = _scipy_solution("lotka_volterra")
    prey, predator = sol.y
    invariant = d * prey - c * np.log(prey) + b * predator - a * np.log(predator)
    np.testing.assert_allclose(invariant, invariant[0], rtol=1e-8)
    # Oscillatory: the prey population both grows and shrinks.
    assert prey.max() > 1.2 * prey[0] and prey.min() < 0.5 * prey[0]


@pytest.mark.parametrize(
    "mu, t1, stiff", [(1.0, 6.3, False), (10.0, 6.3, False), (100.0, 2.0, True), (1e3, 2.0, True)]
)
def test_van_der_pol_defaults(mu, t1, stiff):
    ivp = problems.van_der_pol(mu=mu)
    assert ivp.args == (mu,)
    assert ivp.t1 == t1
    assert ivp.stiff is stiff
    assert problems.van_der_pol(mu=mu, t1=7.5).t1 == 7.5


def test_van_der_pol_is_periodic_for_mu_one():
    """Starting near the limit cycle, the solution returns after one period."""
    ivp = problems.van_der_pol(t1=30.0)
    f = jax.jit(lambda t, y: ivp.vector_field(t, y, ivp.args))
    sol = solve_ivp(
        lambda t, y: np.asarray(f(t, y)),
        (ivp.t0, ivp.t1),
        np.asarray(ivp.y0),
        method="DOP853",
        rtol=1e-10,
        atol=1e-10,
    )
    # Bounded oscillation with amplitude about 2.
    assert np.max(np.abs(sol.y[0])) == pytest.approx(2.0, abs=0.02)
    assert np.min(sol.y[0]) < -1.9


def test_public_api():
    ode_names = {n for n in problems.__all__ if not n.startswith(("genz", "GENZ", "Genz", "random_", "poisson_", "rbf_", "gmm_", "GaussianMixture"))}
    assert ode_names == {
        "InitialValueProblem",
        "fitzhugh_nagumo",
        "hires",
        "logistic",
        "lorenz63",
        "lotka_volterra",
        "pleiades",
        "robertson",
        "van_der_pol",
    }
    for name in problems.__all__:
        assert getattr(problems, name) is not None
    with pytest.raises(TypeError):
        problems.lotka_volterra((1.0, 1.0))  # keyword-only arguments
