"""Bad input raises a clear ValueError/TypeError naming the argument, before any iteration."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from probnum_jax import linalg

N = 6
A = jnp.eye(N) * 2.0
B = jnp.ones(N)


def _bayescg(A, b, **kw):
    return linalg.bayescg(A, b, **kw)


def _matrix(A, b, **kw):
    return linalg.problinsolve(A, b, belief="matrix", **kw)


def _solution(A, b, **kw):
    return linalg.problinsolve(A, b, belief="solution", **kw)


SOLVERS = pytest.mark.parametrize("solver", [_bayescg, _matrix, _solution], ids=["bayescg", "matrix", "solution"])


@SOLVERS
@pytest.mark.parametrize(
    "A_bad, match",
    [
        (jnp.ones((N, N + 1)), "A must be a square matrix"),
        (jnp.ones(N), "A must be a square matrix"),
        (jnp.eye(N + 2), r"A has shape \(8, 8\), but b has shape \(6,\)"),
        (lambda v: v[:-1], "must return a vector of b's shape"),
        (lx.MatrixLinearOperator(jnp.ones((N, N + 1))), "A must be a square operator"),
    ],
    ids=["rectangular", "vector", "size_mismatch", "matvec_shape", "lineax_rectangular"],
)
def test_non_square_or_mismatched_operator(solver, A_bad, match):
    with pytest.raises(ValueError, match=match):
        solver(A_bad, B)


@SOLVERS
def test_b_shape_mismatch(solver):
    with pytest.raises(ValueError, match="b must be a 1-D array"):
        solver(A, jnp.ones((N, 2)))
    with pytest.raises(ValueError, match="but b has shape"):
        solver(A, jnp.ones(N + 1))
    with pytest.raises(ValueError, match="x0 must have the shape of b"):
        solver(A, B, x0=jnp.ones(N + 1))


@SOLVERS
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_inputs(solver, bad):
    with pytest.raises(ValueError, match="A must be finite"):
        solver(A.at[1, 2].set(bad), B)
    with pytest.raises(ValueError, match="b must be finite"):
        solver(A, B.at[0].set(bad))
    with pytest.raises(ValueError, match="x0 must be finite"):
        solver(A, B, x0=B.at[3].set(bad))


@SOLVERS
@pytest.mark.parametrize("maxiter", [0, -3])
def test_maxiter_below_one(solver, maxiter):
    with pytest.raises(ValueError, match="maxiter must be >= 1"):
        solver(A, B, maxiter=maxiter)


@SOLVERS
def test_maxiter_not_an_int(solver):
    with pytest.raises(TypeError, match="maxiter must be a"):
        solver(A, B, maxiter=2.5)


@SOLVERS
@pytest.mark.parametrize("name", ["atol", "rtol"])
def test_negative_tolerances(solver, name):
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        solver(A, B, **{name: -1e-6})
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        solver(A, B, **{name: float("nan")})


def test_bayescg_specific_arguments():
    with pytest.raises(ValueError, match="num_post_iterations must be >= 1"):
        linalg.bayescg(A, B, num_post_iterations=0)
    with pytest.raises(ValueError, match="preconditioner given as a diagonal must have shape"):
        linalg.bayescg(A, B, preconditioner=jnp.ones(N + 1))
    with pytest.raises(ValueError, match="preconditioner given as a diagonal must be positive"):
        linalg.bayescg(A, B, preconditioner=-jnp.ones(N))


def test_problinsolve_specific_arguments():
    with pytest.raises(ValueError, match="belief must be one of"):
        linalg.problinsolve(A, B, belief="vector")
    with pytest.raises(ValueError, match="policy must be one of"):
        linalg.problinsolve(A, B, policy="gmres")
    with pytest.raises(ValueError, match="needs an explicit PRNG key"):
        linalg.problinsolve(A, B, policy="random")
    with pytest.raises(ValueError, match="stopping must be one of"):
        linalg.problinsolve(A, B, stopping="residuals")
    with pytest.raises(ValueError, match="calibration for belief='matrix' must be one of"):
        linalg.problinsolve(A, B, calibration="empirical_bayes")
    with pytest.raises(ValueError, match="calibration for belief='solution' must be one of"):
        linalg.problinsolve(A, B, belief="solution", calibration="rayleigh")
    with pytest.raises(ValueError, match="calibration given as a number must be > 0"):
        linalg.problinsolve(A, B, calibration=0.0)
    with pytest.raises(ValueError, match="noise_std is supported for belief='matrix' only"):
        linalg.problinsolve(A, B, belief="solution", noise_std=0.1)
    with pytest.raises(ValueError, match="noise_std must be a finite number >= 0"):
        linalg.problinsolve(A, B, noise_std=-0.1)
    with pytest.raises(ValueError, match=r"prior_inverse has shape \(7, 7\)"):
        linalg.problinsolve(A, B, prior_inverse=jnp.eye(N + 1))


def test_calibration_statistics_checks_shapes():
    res = linalg.bayescg(A, B, throw=False)
    with pytest.raises(ValueError, match="x_true must have the shape of the solution"):
        linalg.calibration_statistics(res, A, jnp.ones(N + 1))
    with pytest.raises(ValueError, match="A has shape"):
        linalg.calibration_statistics(res, jnp.eye(N + 1), jnp.ones(N))


def test_errors_are_raised_at_trace_time_under_jit():
    with pytest.raises(ValueError, match="A must be a square matrix"):
        jax.jit(lambda M, b: linalg.bayescg(M, b).mean)(jnp.ones((N, N + 1)), B)
    with pytest.raises(ValueError, match="maxiter must be >= 1"):
        jax.jit(lambda b: linalg.problinsolve(A, b, maxiter=0).mean)(B)
