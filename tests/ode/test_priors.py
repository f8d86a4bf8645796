"""The IOUP and Matérn priors: discretisation against Van Loan quadrature, limits, solves.

Numbers measured when the tests were written are in the ODE guide ("Priors").
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import quad_vec, solve_ivp

import probnum_jax as pnx
from probnum_jax.ode._factorisations import FACTORISATIONS
from probnum_jax.ode._prior import iwp_preconditioned_transition, iwp_preconditioner

from .conftest import geometric_mean_ratio


def _matern_drift(q, lengthscale):
    kappa = math.sqrt(2 * q + 1) / lengthscale
    f = np.diag(np.ones(q), 1)
    f[q, :] = [-math.comb(q + 1, j) * kappa ** (q + 1 - j) for j in range(q + 1)]
    return f


def _ioup_drift(q, rate):
    rate = np.atleast_2d(rate)
    d = rate.shape[0]
    f = np.kron(np.diag(np.ones(q), 1), np.eye(d))
    f[q * d :, q * d :] += rate
    return f


def _van_loan_reference(drift, dim, h):
    """``expm(F h)`` and ``∫_0^h expm(F s) B B^T expm(F s)^T ds`` by adaptive quadrature."""
    n = drift.shape[0]
    b = np.zeros((n, dim))
    b[n - dim :, :] = np.eye(dim)

    def integrand(s):
        g = scipy.linalg.expm(drift * s) @ b
        return g @ g.T

    q_ref, _ = quad_vec(integrand, 0.0, h, epsabs=1e-15, epsrel=1e-13)
    return scipy.linalg.expm(drift * h), q_ref


@jax.jit
def _discretisation(prior, dt, fact):
    """Preconditioned ``(Ā, L̄)`` and ``(A(dt), Q(dt))`` in the state's coordinates (lifted).

    One jitted function for all tests, so that equal structures share one compilation.
    """
    a_bar, l_bar = prior.discretise(dt, fact)
    scales, c = iwp_preconditioner(dt, fact.num_derivatives)
    scales = fact.lift_diagonal(scales)
    a = scales[..., :, None] * a_bar / scales[..., None, :]
    chol = c * scales[..., :, None] * l_bar
    return a_bar, l_bar, a, chol @ jnp.swapaxes(chol, -1, -2)


_MATRIX_RATE = np.array([[-2.0, 1.0], [0.5, -30.0]])
CASES = [
    # (name, prior, drift, q, dim, h, factorisation)
    ("matern", pnx.ode.Matern(lengthscale=0.7), _matern_drift(2, 0.7), 2, 1, 0.4, "isotropic"),
    ("ioup-matrix", pnx.ode.IOUP(rate=_MATRIX_RATE), _ioup_drift(1, _MATRIX_RATE), 1, 2, 0.3, "dense"),
    pytest.param(
        "ioup-scalar", pnx.ode.IOUP(rate=-3.0), _ioup_drift(3, -3.0), 3, 1, 0.5, "isotropic",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "ioup-stiff", pnx.ode.IOUP(rate=-100.0), _ioup_drift(1, -100.0), 1, 1, 0.2, "isotropic",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "ioup-vector-blockdiag", pnx.ode.IOUP(rate=np.array([-1.0, -20.0])),
        _ioup_drift(2, np.diag([-1.0, -20.0])), 2, 2, 0.3, "blockdiag", marks=pytest.mark.slow,
    ),
]


def _as_dense(matrix, fact):
    """A lifted per-coordinate matrix as the dense derivative-major matrix."""
    if matrix.ndim == 3:  # blockdiag [d, n, n]
        d, n, _ = matrix.shape
        out = np.zeros((n, d, n, d))
        for k in range(d):
            out[:, k, :, k] = matrix[k]
        return out.reshape(n * d, n * d)
    return np.asarray(matrix)


@pytest.mark.parametrize("name, prior, drift, q, dim, h, factorisation", CASES)
def test_discretisation_matches_van_loan_quadrature(name, prior, drift, q, dim, h, factorisation):
    """A(h) = expm(F h) and Q(h) = ∫ expm(F s) L Lᵀ expm(F s)ᵀ ds (scipy expm + quad_vec)."""
    a_ref, q_ref = _van_loan_reference(drift, dim, h)
    fact = FACTORISATIONS[factorisation](q, dim)
    _, _, a, qm = _discretisation(prior, jnp.asarray(h), fact)
    a, qm = _as_dense(np.asarray(a), fact), _as_dense(np.asarray(qm), fact)
    print(f"{name}: max |A - A_ref| / max |A_ref| = {np.abs(a - a_ref).max() / np.abs(a_ref).max():.1e}, "
          f"same for Q: {np.abs(qm - q_ref).max() / np.abs(q_ref).max():.1e}")
    np.testing.assert_allclose(a, a_ref, rtol=1e-10, atol=1e-12 * np.abs(a_ref).max())
    np.testing.assert_allclose(qm, q_ref, rtol=1e-9, atol=1e-12 * np.abs(q_ref).max())


def _iwp_matrices(q, h):
    """The IWP's closed-form ``A(h)``, ``Q(h)`` (module docstring of ``_prior``)."""
    i, j = np.meshgrid(np.arange(q + 1), np.arange(q + 1), indexing="ij")
    fact = np.vectorize(math.factorial)
    a = np.where(j >= i, h ** np.maximum(j - i, 0) / fact(np.maximum(j - i, 0)), 0.0)
    p = 2 * q + 1 - i - j
    return a, h**p / (p * fact(q - i) * fact(q - j))


def test_zero_rate_limit_is_iwp():
    """IOUP with a zero (matrix) rate and a Matérn with an enormous lengthscale give the IWP."""
    h = 0.3
    for prior, q, dim, factorisation in (
        (pnx.ode.IOUP(rate=np.zeros((2, 2))), 1, 2, "dense"),
        (pnx.ode.IOUP(rate=1e-13 * _MATRIX_RATE), 1, 2, "dense"),
        (pnx.ode.Matern(lengthscale=1e13), 2, 1, "isotropic"),
    ):
        fact = FACTORISATIONS[factorisation](q, dim)
        a_bar, l_bar, a, qm = _discretisation(prior, jnp.asarray(h), fact)
        a_iwp, q_iwp = _iwp_matrices(q, h)
        np.testing.assert_allclose(a, np.kron(a_iwp, np.eye(dim)), atol=1e-12)
        np.testing.assert_allclose(qm, np.kron(q_iwp, np.eye(dim)), atol=1e-12)
        a_pre, l_pre = iwp_preconditioned_transition(q)
        np.testing.assert_allclose(a_bar, np.kron(a_pre, np.eye(dim)), atol=1e-11)
        np.testing.assert_allclose(l_bar @ l_bar.T, np.kron(l_pre @ l_pre.T, np.eye(dim)), atol=1e-11)


def _matern_stationary(q, lengthscale):
    """Closed-form stationary covariance of (y, y', ..., y^(q)) under unit white noise."""
    kappa = math.sqrt(2 * q + 1) / lengthscale
    if q == 1:  # ν = 3/2: Var y = 1 / (4 κ^3), Var y' = 1 / (4 κ)
        return np.diag([1 / (4 * kappa**3), 1 / (4 * kappa)])
    # ν = 5/2: Var y = 3/(16 κ^5), Var y' = 1/(16 κ^3), Var y'' = 3/(16 κ), Cov(y, y'') = -Var y'
    v0, v1, v2 = 3 / (16 * kappa**5), 1 / (16 * kappa**3), 3 / (16 * kappa)
    return np.array([[v0, 0.0, -v1], [0.0, v1, 0.0], [-v1, 0.0, v2]])


@pytest.mark.parametrize("q", [2, pytest.param(1, marks=pytest.mark.slow)])
def test_matern_transition_preserves_stationary_covariance(q):
    """A(h) P∞ A(h)ᵀ + Q(h) = P∞ for the closed-form P∞ (ν = 3/2, 5/2)."""
    lengthscale = 0.8
    p_inf = _matern_stationary(q, lengthscale)
    # the closed form solves the Lyapunov equation F P + P Fᵀ + e_q e_qᵀ = 0
    f = _matern_drift(q, lengthscale)
    lyap = f @ p_inf + p_inf @ f.T
    lyap[q, q] += 1.0
    np.testing.assert_allclose(lyap, 0.0, atol=1e-12)
    fact = FACTORISATIONS["isotropic"](q, 1)
    for h in (0.05, 1.0, 10.0):
        _, _, a, qm = _discretisation(pnx.ode.Matern(lengthscale=lengthscale), jnp.asarray(h), fact)
        np.testing.assert_allclose(a @ p_inf @ a.T + qm, p_inf, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "prior",
    [pnx.ode.Matern(lengthscale=0.5), pytest.param(pnx.ode.IOUP(rate=-20.0), marks=pytest.mark.slow)],
    ids=["matern", "ioup"],
)
def test_float32_discretisation_is_finite_and_accurate(prior):
    """In float32 the preconditioned factors stay finite and close to float64, from tiny to huge steps."""
    q = 2
    fact = FACTORISATIONS["isotropic"](q, 1)
    for h in (1e-6, 1e-2, 1.0, 100.0):
        a64, l64, _, _ = _discretisation(prior, jnp.asarray(h), fact)  # shares the compilation above
        with jax.enable_x64(False):
            a32, l32, _, _ = _discretisation(prior, jnp.asarray(h, jnp.float32), fact)
        assert a32.dtype == jnp.float32 and l32.dtype == jnp.float32
        assert np.all(np.isfinite(a32)) and np.all(np.isfinite(l32))
        a32, l32 = np.asarray(a32, np.float64), np.asarray(l32, np.float64)
        print(f"h={h}: float32 vs float64: |Ā| {np.abs(a32 - a64).max():.1e}, "
              f"|Q̄| {np.abs(l32 @ l32.T - l64 @ l64.T).max():.1e}")
        np.testing.assert_allclose(a32, a64, atol=1e-5 * max(1.0, float(np.abs(a64).max())))
        np.testing.assert_allclose(l32 @ l32.T, l64 @ l64.T, atol=1e-6)


def test_parameter_checks_name_the_argument():
    with pytest.raises(ValueError, match="lengthscale"):
        pnx.ode.Matern(lengthscale=0.0)
    with pytest.raises(ValueError, match="lengthscale"):
        pnx.ode.Matern(lengthscale=-1.0)
    with pytest.raises(ValueError, match="lengthscale"):
        pnx.ode.Matern(lengthscale=jnp.ones(2))
    with pytest.raises(ValueError, match="rate"):
        pnx.ode.IOUP(rate=jnp.nan)
    with pytest.raises(ValueError, match="rate"):
        pnx.ode.IOUP(rate=jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="rate.*dense"):
        pnx.ode.EK1(factorisation="blockdiag", prior=pnx.ode.IOUP(rate=-jnp.eye(2)))
    with pytest.raises(ValueError, match="rate.*dense"):
        pnx.ode.EK0(factorisation="isotropic", prior=pnx.ode.IOUP(rate=-jnp.eye(2)))
    with pytest.raises(ValueError, match="vector rate"):
        pnx.ode.EK0(factorisation="isotropic", prior=pnx.ode.IOUP(rate=-jnp.ones(2)))
    with pytest.raises(TypeError, match="prior"):
        pnx.ode.EK0(prior="iwp")
    solver = pnx.ode.EK1(num_derivatives=1, prior=pnx.ode.IOUP(rate=-jnp.eye(3)))
    with pytest.raises(ValueError, match=r"rate must have shape \(2, 2\)"):
        pnx.ode.solve_fixed_grid(lambda t, y, a: -y, jnp.ones(2), jnp.linspace(0, 1, 3), solver=solver)


@pytest.mark.slow
def test_traced_invalid_lengthscale_is_reported_in_result():
    """A lengthscale <= 0 inside jit cannot raise: the solve reports it through `sol.result`."""
    f = lambda t, y, a: -y

    @jax.jit
    def grid_solve(lengthscale):
        solver = pnx.ode.EK0(num_derivatives=1, prior=pnx.ode.Matern(lengthscale=lengthscale))
        return pnx.ode.solve_fixed_grid(f, jnp.ones(1), jnp.linspace(0.0, 1.0, 3), solver=solver)

    assert grid_solve(-1.0).result == pnx.ode.RESULTS.nonfinite
    assert grid_solve(1.0).result == pnx.ode.RESULTS.successful


@pytest.mark.parametrize(
    "solver",
    [
        # fixed grid (the "mle" marker below), cheaper to compile than an adaptive solve
        pnx.ode.EK0(num_derivatives=3, prior=pnx.ode.Matern(lengthscale=2.0), calibration="mle"),
        pytest.param(pnx.ode.EK1(num_derivatives=3, prior=pnx.ode.Matern(lengthscale=2.0)), marks=pytest.mark.slow),
        pytest.param(pnx.ode.EK0(num_derivatives=3, prior=pnx.ode.IOUP(rate=-1.0)), marks=pytest.mark.slow),
        pytest.param(pnx.ode.EK1(num_derivatives=3, prior=pnx.ode.IOUP(rate=-1.0)), marks=pytest.mark.slow),
        pytest.param(
            pnx.ode.EK1(num_derivatives=3, prior=pnx.ode.Matern(lengthscale=2.0), calibration="mle"),
            marks=pytest.mark.slow,
        ),
        pytest.param(
            pnx.ode.EK1(num_derivatives=3, factorisation="blockdiag", prior=pnx.ode.IOUP(rate=-jnp.ones(1))),
            marks=pytest.mark.slow,
        ),
    ],
    ids=[
        "ek0-isotropic-matern-grid", "ek1-dense-matern", "ek0-isotropic-ioup", "ek1-dense-ioup",
        "ek1-dense-matern-grid", "ek1-blockdiag-ioup-vector",
    ],
)
def test_solve_is_accurate_and_calibrated(solver):
    """The logistic equation: error against the closed form, and |error| / std.

    Adaptive at tolerance 1e-6, or (``calibration="mle"``) on a fixed grid of 100 steps.
    """
    ivp = pnx.problems.logistic()
    if solver.calibration == "mle":
        ts = jnp.linspace(ivp.t0, ivp.t1, 101)
        sol = pnx.ode.solve_fixed_grid(ivp.vector_field, ivp.y0, ts, args=ivp.args, solver=solver)
    else:
        ts = jnp.linspace(ivp.t0, ivp.t1, 9)
        sol = pnx.ode.solve(
            ivp.vector_field, ivp.y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args, solver=solver,
            save_at=ts, atol=1e-6, rtol=1e-6,
        )
    error = sol.mean - jax.vmap(ivp.solution)(ts)
    ratio = geometric_mean_ratio(error[1:], sol.std[1:])
    print(f"{type(solver).__name__} {solver.factorisation} {type(solver.prior).__name__}: max error "
          f"{np.abs(error).max():.1e}, |err|/std {ratio:.3f}, steps {int(sol.num_steps)}")
    assert np.abs(error).max() < (1e-4 if ts.shape[0] > 9 else 1e-5)
    assert 1e-3 <= ratio <= 10.0


# The exponential-integrator demo: a 1-D reaction-diffusion equation y' = L y + y (1 - y) with
# a stiff discretised Laplacian L (d = 16, eigenvalues down to -115) on a grid of 10 steps.
_D = 16


@pytest.fixture(scope="module")
def semilinear():
    dx = 1.0 / (_D + 1)
    lap = jnp.diag(-2.0 * jnp.ones(_D)) + jnp.diag(jnp.ones(_D - 1), 1) + jnp.diag(jnp.ones(_D - 1), -1)
    linear = 0.1 * lap / dx**2
    y0 = jnp.sin(jnp.pi * dx * jnp.arange(1, _D + 1))

    def f(t, y, args):
        return linear @ y + y * (1.0 - y)

    ref = solve_ivp(
        lambda t, y: np.asarray(linear) @ y + y * (1 - y), (0.0, 1.0), np.asarray(y0),
        method="Radau", rtol=1e-12, atol=1e-12, dense_output=True,
    )
    return f, linear, y0, ref.sol


def test_ioup_is_an_exponential_integrator(semilinear):
    """EK0 with IOUP(rate=L) is accurate on a grid where EK0 with the IWP blows up (Bosch et al. 2023)."""
    f, linear, y0, ref = semilinear
    grid = jnp.linspace(0.0, 1.0, 11)
    exact = ref(np.asarray(grid)).T
    errors, ratios = {}, {}
    # IOUP with a zero rate is the IWP (test_zero_rate_limit_is_iwp): one compilation for both.
    for name, rate in (("iwp", jnp.zeros_like(linear)), ("ioup", linear)):
        solver = pnx.ode.EK0(num_derivatives=1, factorisation="dense", prior=pnx.ode.IOUP(rate=rate))
        sol = pnx.ode.solve_fixed_grid(f, y0, grid, solver=solver)
        errors[name] = np.abs(np.asarray(sol.mean) - exact).max()
        ratios[name] = geometric_mean_ratio(sol.mean[1:] - exact[1:], sol.std[1:])
    print(f"max error on 10 steps: IWP {errors['iwp']:.1e}, IOUP {errors['ioup']:.1e}; "
          f"IOUP |err|/std {ratios['ioup']:.2f}")
    assert not errors["iwp"] < 1.0  # unstable (or NaN)
    assert errors["ioup"] < 1e-3
    assert 1e-2 <= ratios["ioup"] <= 10.0


@pytest.mark.slow
def test_ioup_takes_fewer_adaptive_steps(semilinear):
    """At equal tolerance IOUP(rate=L) needs about half the IWP's steps, with EK0 and EK1."""
    f, linear, y0, ref = semilinear
    for cls in (pnx.ode.EK0, pnx.ode.EK1):
        steps = {}
        for name, prior in (("iwp", pnx.ode.IWP()), ("ioup", pnx.ode.IOUP(rate=linear))):
            solver = cls(num_derivatives=1, factorisation="dense", prior=prior)
            sol = pnx.ode.solve(f, y0, t0=0.0, t1=1.0, solver=solver, atol=1e-5, rtol=1e-5)
            steps[name] = int(sol.num_steps)
            assert np.abs(np.asarray(sol.mean[-1]) - ref(1.0)).max() < 1e-4
        print(cls.__name__, steps)
        assert steps["ioup"] < 0.7 * steps["iwp"]


@pytest.mark.slow
def test_ioup_linear_problem_is_solved_exactly(semilinear):
    """For y' = L y the IOUP(rate=L) prior's mean is the exact flow: two steps suffice."""
    _, linear, y0, _ = semilinear
    sol = pnx.ode.solve_fixed_grid(
        lambda t, y, a: linear @ y, y0, jnp.linspace(0.0, 1.0, 3),
        solver=pnx.ode.EK0(num_derivatives=1, factorisation="dense", prior=pnx.ode.IOUP(rate=linear)),
    )
    exact = jax.vmap(lambda t: jax.scipy.linalg.expm(linear * t) @ y0)(sol.t)
    np.testing.assert_allclose(sol.mean, exact, atol=1e-10)


@pytest.mark.slow
def test_gradient_with_respect_to_prior_parameters():
    """Reverse and forward mode through the per-step discretisation match finite differences."""
    grid = jnp.linspace(0.0, 1.0, 6)

    def final(rate, lengthscale):
        out = 0.0
        for prior in (pnx.ode.IOUP(rate=rate), pnx.ode.Matern(lengthscale=lengthscale)):
            solver = pnx.ode.EK0(num_derivatives=2, prior=prior)
            sol = pnx.ode.solve_fixed_grid(lambda t, y, a: -30.0 * y, jnp.ones(1), grid, solver=solver)
            out = out + sol.mean[-1, 0]
        return out

    x = (-20.0, 0.7)
    grad = jax.grad(final, argnums=(0, 1))(*x)
    fwd = jax.jacfwd(final, argnums=(0, 1))(*x)
    eps = 1e-5
    fd = ((final(x[0] + eps, x[1]) - final(x[0] - eps, x[1])) / (2 * eps),
          (final(x[0], x[1] + eps) - final(x[0], x[1] - eps)) / (2 * eps))
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    np.testing.assert_allclose(fwd, fd, rtol=1e-5)


@pytest.mark.parametrize("factorisation", ["isotropic", "blockdiag", "dense"])
def test_step_context_discretise_gives_the_transition(factorisation):
    """``StepContext.discretise(dt).matrices()`` is ``(A(dt), cholesky(Q(dt)))`` for every layout."""
    from probnum_jax.ode._step import StepContext

    q, dim, h = 2, 2, 0.3
    a_iwp, q_iwp = _iwp_matrices(q, h)
    # IWP only (eager, cheap); the step-dependent path is checked through prior.discretise above.
    for prior in (pnx.ode.IWP(),):
        solver = pnx.ode.EK0(num_derivatives=q, factorisation=factorisation, prior=prior)
        ctx = StepContext.build(solver, dim, jnp.float64)
        a, chol = ctx.discretise(jnp.asarray(h)).matrices()
        cov = chol @ jnp.swapaxes(chol, -1, -2)
        if factorisation == "dense":
            a_iwp_l, q_iwp_l = np.kron(a_iwp, np.eye(dim)), np.kron(q_iwp, np.eye(dim))
        elif factorisation == "blockdiag":
            a_iwp_l, q_iwp_l = np.broadcast_to(a_iwp, (dim, q + 1, q + 1)), np.broadcast_to(q_iwp, (dim, q + 1, q + 1))
        else:
            a_iwp_l, q_iwp_l = a_iwp, q_iwp
        np.testing.assert_allclose(a, a_iwp_l, atol=1e-12)
        np.testing.assert_allclose(cov, q_iwp_l, atol=1e-12)
