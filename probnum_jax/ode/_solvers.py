"""Probabilistic ODE solvers: EK0 and EK1 (configuration objects)."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from ._control import AbstractController, PIController
from ._factorisations import FACTORISATIONS
from ._prior import IWP, AbstractPrior

_CALIBRATIONS = ("dynamic", "mle", "none")
_STRATEGIES = ("filter", "smoother", "fixedpoint")


class AbstractSolver(eqx.Module):
    """A Gaussian ODE filter: a prior, a linearisation, a calibration and a strategy.

    The filter conditions a Gauss–Markov prior over ``(y, y', ..., y^(q))`` on
    ``y'(t_n) - f(t_n, y(t_n)) = 0`` at every step (Schober, Särkkä & Hennig 2019,
    "A probabilistic model for the numerical solution of initial value
    problems"; Tronarp et al. 2019, "Probabilistic solutions to ordinary
    differential equations as nonlinear Bayesian filtering").
    """

    num_derivatives: eqx.AbstractVar[int]
    factorisation: eqx.AbstractVar[str]
    prior: eqx.AbstractVar[AbstractPrior]
    calibration: eqx.AbstractVar[str]
    strategy: eqx.AbstractVar[str]
    control: eqx.AbstractVar[AbstractController]
    output_scale: eqx.AbstractVar[float]

    def __check_init__(self):
        if not isinstance(self.num_derivatives, int) or self.num_derivatives < 1:
            raise ValueError(f"num_derivatives must be an int >= 1, got {self.num_derivatives!r}.")
        if self.calibration not in _CALIBRATIONS:
            raise ValueError(f"calibration must be one of {_CALIBRATIONS}, got {self.calibration!r}.")
        if self.strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {self.strategy!r}.")
        if self.factorisation not in self.supported_factorisations():
            raise ValueError(
                f"factorisation must be one of {self.supported_factorisations()} for "
                f"{type(self).__name__}, got {self.factorisation!r}."
            )
        if not isinstance(self.prior, AbstractPrior):
            raise TypeError(
                f"prior must be an ode.IWP, ode.IOUP or ode.Matern instance, got {type(self.prior).__name__}."
            )
        self.prior.check(self.factorisation)

    @abc.abstractmethod
    def supported_factorisations(self) -> tuple:
        """Factorisations this linearisation works with."""

    @abc.abstractmethod
    def jacobian(self, f, y):
        """``(f(y), J)`` with ``J`` whatever the linearisation needs (``None`` for EK0)."""

    def make_factorisation(self, dim: int):
        return FACTORISATIONS[self.factorisation](self.num_derivatives, dim)


class EK0(AbstractSolver):
    """Zeroth-order linearisation: the ODE filter that ignores the Jacobian.

    Cheap and well suited to non-stiff problems; with the ``"isotropic"``
    factorisation a step costs ``O(d q + q^3)`` (Krämer, Bosch, Schmidt & Hennig
    2022, "Probabilistic ODE solutions in millions of dimensions").

    Arguments:
        num_derivatives: ``q``, the number of derivatives in the state (the order).
        factorisation: ``"isotropic"`` (default), ``"blockdiag"`` or ``"dense"``.
        prior: the Gauss–Markov prior: ``IWP()`` (default), ``IOUP(rate=...)``
            or ``Matern(lengthscale=...)``.
        calibration: ``"dynamic"`` (local, per step), ``"mle"`` (global, rescaled
            at the end) or ``"none"`` (use ``output_scale``).
        strategy: ``"filter"``, ``"smoother"`` or ``"fixedpoint"``.
        control: a step-size controller, ``PIController()`` by default.
        output_scale: the fixed output scale for ``calibration="none"``.

    Example:
        >>> import jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> sol = pnx.ode.solve(lambda t, y, a: -y, jnp.ones(1), t0=0.0, t1=1.0,
        ...                     solver=pnx.ode.EK0(num_derivatives=3))
        >>> bool(jnp.abs(sol.mean[-1, 0] - jnp.exp(-1.0)) < 1e-4)
        True
    """

    num_derivatives: int = eqx.field(default=4, static=True)
    factorisation: str = eqx.field(default="isotropic", static=True)
    prior: AbstractPrior = IWP()
    calibration: str = eqx.field(default="dynamic", static=True)
    strategy: str = eqx.field(default="filter", static=True)
    control: AbstractController = PIController()
    output_scale: float = 1.0

    def supported_factorisations(self):
        return ("isotropic", "blockdiag", "dense")

    def jacobian(self, f, y):
        return f(y), None


class EK1(AbstractSolver):
    """First-order linearisation: the ODE filter for stiff problems.

    With ``factorisation="dense"`` it uses the full Jacobian (Tronarp et al.
    2019); with ``"blockdiag"`` only its diagonal, at ``O(d q^3)`` per step
    (Krämer et al. 2022). Arguments as for :class:`EK0`.

    Example:
        >>> import jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> sol = pnx.ode.solve(lambda t, y, a: -50.0 * y, jnp.ones(1), t0=0.0, t1=1.0,
        ...                     solver=pnx.ode.EK1(num_derivatives=3))
        >>> int(sol.result._value)
        0
    """

    num_derivatives: int = eqx.field(default=4, static=True)
    factorisation: str = eqx.field(default="dense", static=True)
    prior: AbstractPrior = IWP()
    calibration: str = eqx.field(default="dynamic", static=True)
    strategy: str = eqx.field(default="filter", static=True)
    control: AbstractController = PIController()
    output_scale: float = 1.0

    def supported_factorisations(self):
        return ("dense", "blockdiag")

    def jacobian(self, f, y):
        fy, linear = jax.linearize(f, y)
        basis = jnp.eye(y.shape[0], dtype=y.dtype)
        jac = jax.vmap(linear, out_axes=1)(basis)
        if self.factorisation == "blockdiag":
            return fy, jnp.diagonal(jac)
        return fy, jac
