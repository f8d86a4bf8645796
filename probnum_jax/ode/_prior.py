"""Gauss–Markov priors for the ODE filter: IWP, IOUP and Matérn, in preconditioned coordinates.

The IWP (below) has a step-independent preconditioned transition. The IOUP and
Matérn priors share its preconditioner ``(T, c)`` but their ``Ā(h)``, ``Q̄(h)``
depend on the step; :mod:`probnum_jax.ode._discretise` computes them per step.

For one coordinate, the state is ``(y, y', ..., y^(q))`` and the transition over
a step ``h`` has ``A(h)_ij = h^(j-i) / (j-i)!`` and process-noise covariance
``Q(h)_ij = h^(2q+1-i-j) / ((2q+1-i-j) (q-i)! (q-j)!)``. Both factor as
``A(h) = T Ā T^{-1}`` and ``Q(h) = c^2 T Q̄ T`` with the step-independent
``Ā_ij = binom(q-i, q-j)``, ``Q̄_ij = 1 / (2q+1-i-j)``, a diagonal ``T`` and a
scalar ``c`` (Kersting, Sullivan & Hennig 2020, "Convergence rates of Gaussian
ODE filters", Sec. 4). The Cholesky factor of ``Q̄`` is computed once in float64
and cast, so the discretisation stays stable in float32 for ``q`` up to 8 and
beyond; the scaling ``T_i = h^(q/2 - i) / (q-i)!``, ``c = h^((q+1)/2)`` splits the
powers of ``h`` evenly so that neither factor under- or overflows.
"""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._checks import is_concrete
from ._discretise import iwp_generator, preconditioned_discretisation
from ._factorisations import BlockDiagFactorisation


def iwp_preconditioned_transition(num_derivatives: int):
    """Step-independent ``(Ā, cholesky(Q̄))`` of the IWP(q) prior, as float64 numpy arrays.

    Example:
        >>> A, Q = iwp_preconditioned_transition(1)
        >>> A.tolist()
        [[1.0, 1.0], [0.0, 1.0]]
    """
    q = num_derivatives
    idx = np.arange(q + 1)
    i, j = np.meshgrid(idx, idx, indexing="ij")
    a = np.zeros((q + 1, q + 1))
    for r in range(q + 1):
        for s in range(r, q + 1):
            a[r, s] = math.comb(q - r, q - s)
    qbar = 1.0 / (2 * q + 1 - i - j)
    return a, np.linalg.cholesky(qbar)


def iwp_preconditioner(h, num_derivatives: int):
    """Diagonal ``T`` (as a vector) and scalar ``c`` with ``Q(h) = c^2 T Q̄ T``."""
    q = num_derivatives
    idx = jnp.arange(q + 1)
    fact = jnp.asarray([math.factorial(q - k) for k in range(q + 1)], dtype=jnp.result_type(h))
    scales = h ** (q / 2 - idx) / fact
    return scales, h ** ((q + 1) / 2)


class AbstractPrior(eqx.Module):
    """A Gauss–Markov prior over ``(y, y', ..., y^(q))``: a linear time-invariant SDE.

    Each coordinate follows ``dx = F x dt + e_q dW`` (the diffusion's scale is
    the solver's output scale). Subclasses either give a step-independent
    preconditioned transition (:class:`IWP`, :meth:`transition`) or the
    preconditioned generator ``M(h) = h T(h)^{-1} F T(h)`` that
    :func:`preconditioned_discretisation` turns into ``(Ā(h), cholesky(Q̄(h)))``.
    """

    step_independent = False  # class attribute, not a field

    def check(self, factorisation: str, dim: int | None = None):
        """Raise a ``ValueError`` naming the argument if the prior does not fit the layout."""

    def transition(self, num_derivatives: int, dtype):
        """Step-independent ``(Ā, cholesky(Q̄))``; only for ``step_independent`` priors."""
        raise TypeError(
            f"{type(self).__name__} has a step-dependent transition: use discretise(dt, factorisation)."
        )

    @abc.abstractmethod
    def discretise(self, dt, factorisation):
        """Lifted preconditioned ``(Ā(dt), cholesky(Q̄(dt)))`` on ``factorisation``.

        ``A(dt) = T Ā(dt) T^{-1}`` and ``Q(dt) = c^2 T Q̄(dt) T`` with ``(T, c)``
        from :func:`iwp_preconditioner`.
        """


class IWP(AbstractPrior):
    """The ``q``-times integrated Wiener process prior (the default).

    Its ``q``-th derivative is Brownian motion; the posterior mean of an ODE
    filter with this prior is a spline of degree ``2q+1`` and the method has
    order ``q`` (Kersting et al. 2020). The preconditioned transition does not
    depend on the step, so a step costs no matrix exponential.

    Example:
        >>> import jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> solver = pnx.ode.EK0(num_derivatives=2, prior=pnx.ode.IWP())
        >>> sol = pnx.ode.solve(lambda t, y, a: -y, jnp.ones(1), t0=0.0, t1=1.0, solver=solver)
        >>> bool(jnp.abs(sol.mean[-1, 0] - jnp.exp(-1.0)) < 1e-4)
        True
    """

    step_independent = True

    def transition(self, num_derivatives: int, dtype):
        """Step-independent ``(Ā, cholesky(Q̄))`` in ``dtype``; see :func:`iwp_preconditioner`."""
        a, qs = iwp_preconditioned_transition(num_derivatives)
        return jnp.asarray(a, dtype), jnp.asarray(qs, dtype)

    def discretise(self, dt, factorisation):
        a, qs = self.transition(factorisation.num_derivatives, jnp.result_type(dt))
        return factorisation.lift_matrix(a), factorisation.lift_matrix(qs)


def _check_finite(name, value):
    if is_concrete(value) and not np.all(np.isfinite(np.asarray(value))):
        raise ValueError(f"{name} must be finite, got {np.asarray(value)}.")


def _last_row(q, dtype):
    return jnp.zeros((q + 1, q + 1), dtype).at[q, q].set(1.0)


class IOUP(AbstractPrior):
    """The ``q``-times integrated Ornstein–Uhlenbeck process prior.

    The ``q``-th derivative follows ``d y^(q) = rate · y^(q) dt + dW``; the lower
    derivatives integrate it. ``rate = 0`` is the :class:`IWP`. With a matrix
    ``rate = L`` (``[d, d]``, dense factorisation only) and ``q = 1`` the prior's
    mean solves ``y' = L y`` exactly, so the ODE filter is a *probabilistic
    exponential integrator* for semi-linear problems ``y' = L y + N(y)``: it
    takes steps far beyond the stability limit that the stiff linear part
    imposes on the IWP (Bosch, Hennig & Tronarp 2023, "Probabilistic exponential
    integrators", NeurIPS). The transition over a step ``h`` is computed per step
    (:mod:`probnum_jax.ode._discretise`), in the IWP's preconditioned
    coordinates, so it is stable in float32 also for small and stiff steps.

    Arguments:
        rate: the drift of the ``q``-th derivative: a scalar (any
            factorisation), a ``[d]`` vector (one per coordinate;
            ``"blockdiag"`` or ``"dense"``) or a ``[d, d]`` matrix (``"dense"``
            only). Must be finite; negative rates pull the ``q``-th derivative to
            zero, positive rates let it grow.

    Example:
        >>> import jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> solver = pnx.ode.EK0(num_derivatives=2, prior=pnx.ode.IOUP(rate=-1.0))
        >>> sol = pnx.ode.solve(lambda t, y, a: -y, jnp.ones(1), t0=0.0, t1=1.0, solver=solver)
        >>> bool(jnp.abs(sol.mean[-1, 0] - jnp.exp(-1.0)) < 1e-4)
        True
    """

    rate: Float[Array, "..."] = eqx.field(converter=jnp.asarray)

    def __check_init__(self):
        if self.rate.ndim > 2 or (self.rate.ndim == 2 and self.rate.shape[0] != self.rate.shape[1]):
            raise ValueError(
                f"rate must be a scalar, a [d] vector or a square [d, d] matrix, got shape {self.rate.shape}."
            )
        _check_finite("rate", self.rate)

    def check(self, factorisation: str, dim: int | None = None):
        ndim = self.rate.ndim
        if ndim == 2 and factorisation != "dense":
            raise ValueError(
                f"IOUP: a matrix rate (shape {self.rate.shape}) needs factorisation='dense', "
                f"got factorisation={factorisation!r}."
            )
        if ndim == 1 and factorisation == "isotropic":
            raise ValueError(
                f"IOUP: a vector rate (shape {self.rate.shape}) needs factorisation='blockdiag' or "
                "'dense'; the isotropic factorisation shares one prior over all coordinates "
                "(use a scalar rate)."
            )
        if dim is not None and ndim >= 1 and self.rate.shape != (dim,) * ndim:
            raise ValueError(
                f"IOUP: rate must have shape {(dim,) * ndim} for a {dim}-dimensional ODE, "
                f"got {self.rate.shape}."
            )

    def discretise(self, dt, factorisation):
        q = factorisation.num_derivatives
        dtype = jnp.result_type(dt)
        m0 = jnp.asarray(iwp_generator(q), dtype)
        rate = self.rate.astype(dtype)
        if rate.ndim == 0:
            a, qs = preconditioned_discretisation(lambda h: m0 + (rate * h) * _last_row(q, dtype), dt, q)
            return factorisation.lift_matrix(a), factorisation.lift_matrix(qs)
        if rate.ndim == 1 and isinstance(factorisation, BlockDiagFactorisation):  # one per block

            def one(r):
                return preconditioned_discretisation(lambda h: m0 + (r * h) * _last_row(q, dtype), dt, q)

            return jax.vmap(one)(rate)
        matrix = jnp.diag(rate) if rate.ndim == 1 else rate
        dim = matrix.shape[0]
        base = jnp.kron(m0, jnp.eye(dim, dtype=dtype))
        return preconditioned_discretisation(
            lambda h: base + jnp.kron(_last_row(q, dtype), matrix * h), dt, q, dim
        )


class Matern(AbstractPrior):
    """The Matérn prior of smoothness ``ν = q + 1/2`` on the solution.

    The state ``(y, y', ..., y^(q))`` follows the SDE with companion-form drift
    whose characteristic polynomial is ``(s + κ)^(q+1)``, ``κ = sqrt(2ν) /
    lengthscale``; its stationary law is the Matérn-``ν`` Gaussian process and
    its derivatives (Hartikainen & Särkkä 2010, "Kalman filtering and smoothing
    solutions to temporal Gaussian process regression models"). Unlike the
    :class:`IWP`, the prior reverts to zero on the time scale ``lengthscale``;
    for ``lengthscale`` much longer than the steps it behaves like the IWP.
    ``ν`` follows the solver's ``num_derivatives``. Works with every
    factorisation; the transition is computed per step, as for :class:`IOUP`.

    Arguments:
        lengthscale: a scalar ``> 0``.

    Example:
        >>> import jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> solver = pnx.ode.EK0(num_derivatives=2, prior=pnx.ode.Matern(lengthscale=3.0))
        >>> sol = pnx.ode.solve(lambda t, y, a: -y, jnp.ones(1), t0=0.0, t1=1.0, solver=solver)
        >>> bool(jnp.abs(sol.mean[-1, 0] - jnp.exp(-1.0)) < 1e-4)
        True
    """

    lengthscale: Float[Array, ""] = eqx.field(converter=jnp.asarray)

    def __check_init__(self):
        if self.lengthscale.ndim != 0:
            raise ValueError(f"lengthscale must be a scalar, got shape {self.lengthscale.shape}.")
        _check_finite("lengthscale", self.lengthscale)
        if is_concrete(self.lengthscale) and not float(self.lengthscale) > 0:
            raise ValueError(f"lengthscale must be > 0, got {float(self.lengthscale)}.")

    def discretise(self, dt, factorisation):
        q = factorisation.num_derivatives
        dtype = jnp.result_type(dt)
        m0 = jnp.asarray(iwp_generator(q), dtype)
        lengthscale = self.lengthscale.astype(dtype)
        # A traced lengthscale <= 0 makes the prior invalid: NaN, reported by `sol.result`.
        kappa = jnp.where(lengthscale > 0, jnp.sqrt(jnp.asarray(2 * q + 1, dtype)) / lengthscale, jnp.nan)
        powers = np.arange(q + 1, 0, -1)  # q + 1 - j
        coeffs = jnp.asarray(
            [-math.comb(q + 1, j) / math.factorial(q - j) for j in range(q + 1)], dtype
        )

        def generator(h):
            return m0.at[q].add(coeffs * (kappa * h) ** powers)

        a, qs = preconditioned_discretisation(generator, dt, q)
        return factorisation.lift_matrix(a), factorisation.lift_matrix(qs)
