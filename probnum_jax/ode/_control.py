"""Step-size controllers: map a normalised error to the next step size."""

import abc

import equinox as eqx
import jax.numpy as jnp


class AbstractController(eqx.Module):
    """Proposes the next step from the current one and its normalised error.

    ``error_norm <= 1`` means the step is accepted. The controller state is the
    previous accepted error norm (used by PI control).
    """

    safety: eqx.AbstractVar[float]
    factor_min: eqx.AbstractVar[float]
    factor_max: eqx.AbstractVar[float]

    @abc.abstractmethod
    def factor(self, error_norm, previous_error_norm, order: int):
        """Multiplicative change of the step size."""

    def propose(self, dt, error_norm, previous_error_norm, order: int):
        """Next step size, with the factor clipped to ``[factor_min, factor_max]``."""
        error_norm = jnp.maximum(error_norm, 1e-10)
        factor = self.factor(error_norm, previous_error_norm, order)
        factor = jnp.clip(self.safety * factor, self.factor_min, self.factor_max)
        factor = jnp.where(jnp.isfinite(error_norm), factor, self.factor_min)
        return dt * factor


class IntegralController(AbstractController):
    """``dt_new = dt * safety * error^(-1/(q+1))`` (Hairer, Nørsett & Wanner 1993, II.4).

    Example:
        >>> import probnum_jax as pnx
        >>> pnx.ode.EK0(control=pnx.ode.IntegralController()).control.safety
        0.95
    """

    safety: float = 0.95
    factor_min: float = 0.2
    factor_max: float = 10.0

    def factor(self, error_norm, previous_error_norm, order):
        return error_norm ** (-1.0 / order)


class PIController(AbstractController):
    """Proportional-integral control (Gustafsson 1991; Hairer & Wanner 1996, IV.2).

    ``dt_new = dt * safety * e_n^(-beta1/k) * e_{n-1}^(beta2/k)`` with ``k = q + 1``,
    which damps the oscillating step sizes of integral control on mildly stiff
    problems.
    """

    safety: float = 0.95
    factor_min: float = 0.2
    factor_max: float = 10.0
    beta1: float = 0.7
    beta2: float = 0.4

    def factor(self, error_norm, previous_error_norm, order):
        previous = jnp.maximum(previous_error_norm, 1e-10)
        return error_norm ** (-self.beta1 / order) * previous ** (self.beta2 / order)
