"""Information operators beyond ``y' = f(t, y)``: mass-matrix DAEs and higher-order ODEs.

An ODE filter conditions its Gauss–Markov prior over ``(y, y', ..., y^(q))`` on
a residual that vanishes along the solution. For the first-order ODE it is
``y' - f(t, y)``; this module provides the residual

    ``M y^(ν)(t) - f(t, y(t), y'(t), ..., y^(ν-1)(t)) = 0``

for two generalisations (Bosch, Tronarp & Hennig 2022, "Pick-and-mix
information operators for probabilistic ODE solvers", Sec. 3):

* a constant, possibly singular, mass matrix ``M`` with ``ν = 1``: the
  (semi-explicit, index-1) differential-algebraic equation ``M y' = f(t, y)``;
* ``M = I`` and ``ν >= 2``: the higher-order ODE ``y^(ν) = f(t, y, ..., y^(ν-1))``
  solved directly, without rewriting it as a first-order system.

The EK1 linearises the residual at the predicted mean:
``H = M E_ν - sum_k J_k E_k`` with ``J_k`` the Jacobian of ``f`` in its
``k``-th state argument and ``E_k`` the selector of the ``k``-th derivative.
"""

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import jet

from . import _checks
from ._factorisations import (
    BlockDiagFactorisation,
    DenseFactorisation,
    IsotropicFactorisation,
)
from ._solvers import EK1
from ._taylor import num_taylor_f_evals, taylor_coefficients


class ODEInformation(eqx.Module):
    """``M y^(ν) = f(t, y, ..., y^(ν-1), args)`` with the initial derivatives ``y0', ..., y0^(ν-1)``.

    Passed through the drivers in place of the plain vector field; the initial
    derivatives live here (not in ``y0``) so that ``y0`` stays the ``[d]``
    position everywhere, and stay differentiable.
    """

    vector_field: Callable
    order: int = eqx.field(static=True)
    mass_matrix: jax.Array | None
    initial_derivatives: tuple

    def states(self, fact, mean):
        """``(y, ..., y^(ν-1))`` from a state mean."""
        return tuple(fact.derivative(mean, k) for k in range(self.order))

    def linearise(self, solver, fact, t, mean, args):
        """``(H, residual)`` of ``M y^(ν) - f(t, y, ..., y^(ν-1))`` linearised at ``mean``."""
        states = self.states(fact, mean)

        def f(*ys):
            return self.vector_field(t, *ys, args)

        if not isinstance(solver, EK1):
            return _observation(fact, mean, f(*states), None, self.order, self.mass_matrix)
        f_value, linear = jax.linearize(f, *states)
        basis = jnp.eye(fact.dim, dtype=mean.dtype)
        zero = jnp.zeros_like(states[0])
        jacobians = []
        for k in range(self.order):

            def column(v, k=k):
                return linear(*[v if j == k else zero for j in range(self.order)])

            jac = jax.vmap(column, out_axes=1)(basis)
            jacobians.append(jnp.diagonal(jac) if isinstance(fact, BlockDiagFactorisation) else jac)
        return _observation(fact, mean, f_value, jacobians, self.order, self.mass_matrix)

    def initial_coefficients(self, t0, y0, args, num_derivatives: int):
        """Taylor coefficients ``[q+1, d]`` at ``t0``: see :func:`higher_order_taylor` and :func:`dae_taylor`."""
        if self.mass_matrix is None:
            return higher_order_taylor(
                self.vector_field, t0, (y0, *self.initial_derivatives), args, num_derivatives
            )
        return dae_taylor(self.vector_field, self.mass_matrix, t0, y0, args, num_derivatives)

    def num_initial_f_evals(self, num_derivatives: int) -> int:
        """Vector-field passes of the initialisation (one plain call, then one per Taylor order)."""
        if self.mass_matrix is None:
            return 1 + num_derivatives - self.order
        return 1 + num_derivatives + 1  # f(y0), one pass per order, and the Jacobian at y0


def _observation(fact, mean, f_value, jacobians, order, mass_matrix):
    dtype = mean.dtype
    n = fact.num_derivatives + 1
    unit = [jnp.zeros((n,), dtype).at[k].set(1.0) for k in range(order + 1)]
    top = fact.derivative(mean, order)
    if isinstance(fact, DenseFactorisation):
        m = jnp.eye(fact.dim, dtype=dtype) if mass_matrix is None else mass_matrix
        h = jnp.kron(unit[order][None, :], m)
        for k, jac in enumerate(jacobians or ()):
            h = h - jnp.kron(unit[k][None, :], jac)
        return h, m @ top - f_value
    if isinstance(fact, BlockDiagFactorisation):
        m = jnp.ones((fact.dim,), dtype) if mass_matrix is None else jnp.diagonal(mass_matrix)
        h = m[:, None] * unit[order][None, :]
        for k, jac in enumerate(jacobians or ()):
            h = h - jac[:, None] * unit[k][None, :]
        return h[:, None, :], (m * top - f_value)[:, None]
    if isinstance(fact, IsotropicFactorisation) and jacobians is None and mass_matrix is None:
        return unit[order][None, :], (top - f_value)[None, :]
    raise ValueError(f"{type(fact).__name__} does not support this information operator.")


def _total_derivatives(f, t0, derivs, order, k, method):
    """The first ``k`` total derivatives of ``t -> f(t, y(t), ..., y^(ν-1)(t))`` at ``t0``.

    ``y`` is the path with Taylor coefficients ``derivs`` (``derivs[j] = y^(j)(t0)``,
    at least ``ν + k`` of them); ``ν = order``. ``method="jet"`` propagates the
    truncated series with ``jax.experimental.jet`` (Griewank & Walther 2008, ch. 13);
    ``"jvp"`` nests ``k`` forward-mode derivatives of ``f`` along the Taylor
    polynomial (cost ``O(2^k)``), for vector fields that ``jet`` cannot trace.
    """
    one, zero = jnp.ones_like(t0), jnp.zeros_like(t0)
    if method == "jet":
        primals = (t0, *derivs[:order])
        series = ([one] + [zero] * (k - 1),) + tuple(
            list(derivs[j + 1 : j + 1 + k]) for j in range(order)
        )
        _, out = jet.jet(f, primals, series)
        return list(out)

    def along_path(s):
        ys = [
            sum(derivs[j + i] * (s**i / math.factorial(i)) for i in range(k + 1)) for j in range(order)
        ]
        return f(t0 + s, *ys)

    out, g = [], along_path
    for _ in range(k):

        def g(s, prev=g):
            return jax.jvp(prev, (s,), (jnp.ones_like(s),))[1]

        out.append(g(zero))
    return out


def _resolve_method(f, t0, derivs, order, k):
    try:
        jax.eval_shape(lambda t, ds: _total_derivatives(f, t, ds, order, k, "jet"), t0, derivs)
    except Exception:  # noqa: BLE001 - any tracing failure of jet triggers the fallback
        return "jvp"
    return "jet"


def higher_order_taylor(vector_field, t0, initial_values, args, num_derivatives: int):
    """Taylor coefficients ``[q+1, d]`` of ``y^(ν) = f(t, y, ..., y^(ν-1), args)``.

    The first ``ν`` are the given ``initial_values = (y0, y0', ..., y0^(ν-1))``;
    ``y0^(ν) = f(t0, y0, ..., y0^(ν-1))`` and the higher ones are total
    derivatives of ``f`` along the solution, by Taylor-mode differentiation
    (one ``jet`` pass per order; Krämer & Hennig 2024, "Stable implementation of
    probabilistic ODE solvers", Sec. 3, for the first-order case).

    Example:
        >>> import jax.numpy as jnp
        >>> f = lambda t, y, dy, a: -y  # y'' = -y, y = cos(t)
        >>> c = higher_order_taylor(f, 0.0, (jnp.ones(1), jnp.zeros(1)), None, 4)
        >>> c[:, 0].tolist()
        [1.0, 0.0, -1.0, -0.0, 1.0]
    """
    order = len(initial_values)
    t0 = jnp.asarray(t0, initial_values[0].dtype)

    def f(t, *ys):
        return vector_field(t, *ys, args)

    derivs = list(initial_values) + [f(t0, *initial_values)]
    extra = num_derivatives - order
    method = _resolve_method(f, t0, derivs + [derivs[-1]] * extra, order, extra) if extra else "jet"
    for k in range(1, extra + 1):
        derivs.append(_total_derivatives(f, t0, derivs, order, k, method)[k - 1])
    return jnp.stack(derivs[: num_derivatives + 1])


def dae_taylor(vector_field, mass_matrix, t0, y0, args, num_derivatives: int):
    """Consistent Taylor coefficients ``[q+1, d]`` of the index-1 DAE ``M y' = f(t, y, args)``.

    ``y0`` must be consistent (satisfy the algebraic equations). With the SVD
    ``M = U S V^T`` split into the left singular vectors ``U_1`` of the nonzero
    and ``U_0`` of the zero singular values, the ``k``-th derivative solves the
    square system

        ``U_1^T M y^(k) = U_1^T F_(k-1)``,  ``U_0^T J y^(k) = -U_0^T c_k``,

    where ``F_j = d^j/dt^j f(t, y(t))`` at ``t0`` and ``c_k`` is ``F_k`` with
    ``y^(k)`` set to zero (``F_k = J y^(k) + c_k``, ``J = ∂f/∂y``): the
    differential rows of ``M y^(k) = F_(k-1)`` and the ``k``-th derivative of the
    algebraic rows ``U_0^T f = 0``. The system is nonsingular exactly when the
    DAE has index (at most) one; for an invertible ``M`` it is ``M y^(k) = F_(k-1)``,
    the ODE's Taylor coefficients. The rank split is a mask (singular values
    above ``d · eps · s_max``), so ``M`` may be traced.

    Example:
        >>> import jax.numpy as jnp
        >>> f = lambda t, y, a: jnp.stack([-y[0], y[0] - y[1]])  # y1' = -y1, 0 = y1 - y2
        >>> c = dae_taylor(f, jnp.diag(jnp.array([1.0, 0.0])), 0.0, jnp.ones(2), None, 2)
        >>> c.tolist()
        [[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0]]
    """
    dtype = y0.dtype
    t0 = jnp.asarray(t0, dtype)

    def f(t, y):
        return vector_field(t, y, args)

    u, s, _ = jnp.linalg.svd(mass_matrix)
    differential = s > y0.shape[0] * jnp.finfo(dtype).eps * s[0]
    jac = jax.jacfwd(f, argnums=1)(t0, y0)
    system = jnp.where(differential[:, None], u.T @ mass_matrix, u.T @ jac)
    derivs = [y0]
    f0 = f(t0, y0)
    zero = jnp.zeros_like(y0)
    method = _resolve_method(f, t0, [y0] * (num_derivatives + 1), 1, num_derivatives)
    for k in range(1, num_derivatives + 1):
        out = _total_derivatives(f, t0, derivs + [zero], 1, k, method)
        lower = f0 if k == 1 else out[k - 2]
        rhs = jnp.where(differential, u.T @ lower, -(u.T @ out[k - 1]))
        derivs.append(jnp.linalg.solve(system, rhs))
    return jnp.stack(derivs)


def prepare(vector_field, y0, *, solver, mass_matrix):
    """Validate ``y0`` and ``mass_matrix``; return the (possibly wrapped) vector field and the ``[d]`` position.

    A tuple ``y0 = (y0, y0', ..., y0^(ν-1))`` of ``[d]`` arrays selects the
    ``ν``-th order ODE; a ``mass_matrix`` the DAE. Without either, the vector
    field is returned unchanged.
    """
    derivatives = ()
    if isinstance(y0, tuple) and len(y0) > 1 and all(np.ndim(v) >= 1 for v in y0):
        values = [v if hasattr(v, "shape") else jnp.asarray(v) for v in y0]
        shapes = [tuple(v.shape) for v in values]
        if any(len(s) != 1 for s in shapes) or len(set(shapes)) != 1:
            raise ValueError(
                f"y0 given as a tuple (y0, y0', ...) must hold 1-D arrays of one shape [d], "
                f"got shapes {shapes}."
            )
        dtype = jnp.result_type(*values)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.result_type(float)
        for k, v in enumerate(values):
            if _checks.is_concrete(v) and not np.all(np.isfinite(np.asarray(v))):
                raise ValueError(f"y0[{k}] must be finite, got {np.asarray(v)} (contains NaN or inf).")
        y0, *derivatives = [jnp.asarray(v, dtype) for v in values]
        derivatives = tuple(derivatives)
        if solver.num_derivatives < len(values):
            raise ValueError(
                f"A {len(values)}-th order ODE (y0 is a tuple of {len(values)} arrays) needs "
                f"solver.num_derivatives >= {len(values)}, got {solver.num_derivatives}."
            )
        if mass_matrix is not None:
            raise ValueError("mass_matrix is not supported together with a higher-order y0 (a tuple).")
    else:
        y0 = _checks.as_initial_value(y0)
    if mass_matrix is not None:
        mass_matrix = _check_mass_matrix(mass_matrix, y0, solver)
    if not derivatives and mass_matrix is None:
        return vector_field, y0
    return ODEInformation(vector_field, 1 + len(derivatives), mass_matrix, derivatives), y0


def _check_mass_matrix(mass_matrix, y0, solver):
    d = y0.shape[0]
    mass_matrix = jnp.asarray(mass_matrix, y0.dtype)
    if mass_matrix.shape != (d, d):
        raise ValueError(f"mass_matrix must have shape (d, d) = {(d, d)}, got {mass_matrix.shape}.")
    fact = solver.factorisation
    if fact == "isotropic":
        raise ValueError(
            "mass_matrix needs factorisation='dense' (or 'blockdiag' with a diagonal mass_matrix); "
            "the isotropic factorisation cannot represent it."
        )
    if not _checks.is_concrete(mass_matrix):
        return mass_matrix
    m = np.asarray(mass_matrix)
    if not np.all(np.isfinite(m)):
        raise ValueError("mass_matrix must be finite (it contains NaN or inf).")
    if fact == "blockdiag" and np.any(m != np.diag(np.diag(m))):
        raise ValueError(
            "mass_matrix must be diagonal with factorisation='blockdiag'; use factorisation='dense'."
        )
    if not isinstance(solver, EK1) and np.linalg.matrix_rank(m) < d:
        raise ValueError(
            "A singular mass_matrix (a DAE) needs EK1: EK0 ignores the Jacobian, so the "
            "algebraic equations would carry no information about y. Use EK1(factorisation='dense')."
        )
    return mass_matrix


def check_problem(vector_field, t0, y0, args):
    """Like :func:`_checks.check_vector_field`, for a plain or a wrapped vector field."""
    if not isinstance(vector_field, ODEInformation):
        return _checks.check_vector_field(vector_field, t0, y0, args)
    states = (y0, *vector_field.initial_derivatives)
    nu = len(states)
    try:
        out = jax.eval_shape(vector_field.vector_field, t0, *states, args)
    except Exception as e:
        signature = "f(t, y, args)" if nu == 1 else "f(t, y, " + ", ".join(
            "d" * k + "y" for k in range(1, nu)
        ) + ", args)"
        raise TypeError(
            f"Calling the vector field as {signature} failed ({type(e).__name__}: {e}). "
            f"With y0 a tuple of {nu} arrays, f receives the time, the {nu} state arguments and "
            f"args, and returns the {nu}-th derivative."
        ) from e
    _checks.check_vector_field_output(out, y0, "The vector field")


def initial_coefficients(vector_field, t0, y0, args, num_derivatives: int):
    """Initial Taylor coefficients ``[q+1, d]`` for a plain or a wrapped vector field."""
    if isinstance(vector_field, ODEInformation):
        return vector_field.initial_coefficients(t0, y0, args, num_derivatives)
    return taylor_coefficients(vector_field, t0, y0, args, num_derivatives)


def num_initial_f_evals(vector_field, t0, y0, args, num_derivatives: int) -> int:
    if isinstance(vector_field, ODEInformation):
        return vector_field.num_initial_f_evals(num_derivatives)
    return num_taylor_f_evals(vector_field, t0, y0, args, num_derivatives)
