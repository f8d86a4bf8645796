"""How the ODE filter's state is laid out for each covariance factorisation.

The state stacks the ``q+1`` derivatives ``(y, y', ..., y^(q))`` of a ``d``-dimensional
solution. A factorisation fixes the Gaussian structure from
:mod:`probnum_jax.randvars` and how the prior and the linearised ODE act on it:

* ``"dense"``: :class:`~probnum_jax.randvars.DenseNormal` over the flattened
  ``[(q+1) * d]`` state (derivative-major). Any Jacobian fits; cost ``O(d^3 q^3)``.
* ``"isotropic"``: :class:`~probnum_jax.randvars.IsotropicNormal` ``[q+1, d]``;
  all coordinates share one covariance. Cost ``O(d q + q^3)`` per step.
* ``"blockdiag"``: :class:`~probnum_jax.randvars.BlockDiagNormal` ``[d, q+1]``;
  one covariance per coordinate, which admits a diagonal Jacobian.
  Cost ``O(d q^3)``.
"""

import abc

import equinox as eqx
import jax.numpy as jnp

from .. import randvars


def _unit(k, size, dtype):
    return jnp.zeros((size,), dtype).at[k].set(1.0)


class Factorisation(eqx.Module):
    """Abstract layout of the ODE state for one covariance structure."""

    num_derivatives: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    @abc.abstractmethod
    def from_taylor(self, coefficients):
        """A state with the given ``[q+1, d]`` derivatives and zero covariance."""

    @abc.abstractmethod
    def derivative(self, mean, k: int):
        """The ``k``-th derivative ``[d]`` from a state mean."""

    @abc.abstractmethod
    def lift_matrix(self, matrix):
        """Lift a ``[q+1, q+1]`` per-coordinate matrix onto the structure."""

    @abc.abstractmethod
    def lift_diagonal(self, diagonal):
        """Lift a ``[q+1]`` per-coordinate diagonal onto the structure."""

    @abc.abstractmethod
    def observation(self, mean, f_value, jacobian):
        """``(H, residual)`` of ``y' - f(y)`` linearised at ``mean``.

        ``jacobian`` is ``None`` (EK0), a ``[d, d]`` matrix (EK1) or a ``[d]``
        diagonal (diagonal EK1).
        """

    def derivative_std(self, rv, k: int):
        """The marginal std ``[d]`` of the ``k``-th derivative."""
        return self.derivative(rv.std, k)

    def residual_std(self, rv):
        """Marginal std ``[d]`` of a residual Gaussian returned by :meth:`observation`."""
        return rv.std.reshape(self.dim)

    def output_scale_shape(self):
        """Shape of the output scale: one per block, or a scalar."""
        return ()

    def num_residual_dof(self):
        """Degrees of freedom of one residual, per output scale."""
        return self.dim


class DenseFactorisation(Factorisation):
    def from_taylor(self, coefficients):
        n = coefficients.size
        return randvars.DenseNormal(coefficients.reshape(-1), jnp.zeros((n, n), coefficients.dtype))

    def derivative(self, mean, k):
        return mean.reshape(self.num_derivatives + 1, self.dim)[k]

    def lift_matrix(self, matrix):
        return jnp.kron(matrix, jnp.eye(self.dim, dtype=matrix.dtype))

    def lift_diagonal(self, diagonal):
        return jnp.repeat(diagonal, self.dim)

    def observation(self, mean, f_value, jacobian):
        dtype = mean.dtype
        n = self.num_derivatives + 1
        e0, e1 = _unit(0, n, dtype), _unit(1, n, dtype)
        eye = jnp.eye(self.dim, dtype=dtype)
        h = jnp.kron(e1[None, :], eye)
        if jacobian is not None:
            h = h - jnp.kron(e0[None, :], jacobian)
        return h, self.derivative(mean, 1) - f_value


class IsotropicFactorisation(Factorisation):
    def from_taylor(self, coefficients):
        n = self.num_derivatives + 1
        return randvars.IsotropicNormal(coefficients, jnp.zeros((n, n), coefficients.dtype))

    def derivative(self, mean, k):
        return mean[k]

    def lift_matrix(self, matrix):
        return matrix

    def lift_diagonal(self, diagonal):
        return diagonal

    def observation(self, mean, f_value, jacobian):
        if jacobian is not None:
            raise ValueError("The isotropic factorisation supports only EK0 (no Jacobian).")
        h = _unit(1, self.num_derivatives + 1, mean.dtype)[None, :]
        return h, (mean[1] - f_value)[None, :]


class BlockDiagFactorisation(Factorisation):
    def from_taylor(self, coefficients):
        n = self.num_derivatives + 1
        return randvars.BlockDiagNormal(
            coefficients.T, jnp.zeros((self.dim, n, n), coefficients.dtype)
        )

    def derivative(self, mean, k):
        return mean[:, k]

    def lift_matrix(self, matrix):
        return jnp.broadcast_to(matrix, (self.dim,) + matrix.shape)

    def lift_diagonal(self, diagonal):
        return jnp.broadcast_to(diagonal, (self.dim,) + diagonal.shape)

    def observation(self, mean, f_value, jacobian):
        n = self.num_derivatives + 1
        e0, e1 = _unit(0, n, mean.dtype), _unit(1, n, mean.dtype)
        if jacobian is None:
            h = jnp.broadcast_to(e1, (self.dim, 1, n))
        else:
            h = (e1[None, :] - jacobian[:, None] * e0[None, :])[:, None, :]
        return h, (mean[:, 1] - f_value)[:, None]

    def output_scale_shape(self):
        return (self.dim,)

    def num_residual_dof(self):
        return 1


FACTORISATIONS = {
    "dense": DenseFactorisation,
    "isotropic": IsotropicFactorisation,
    "blockdiag": BlockDiagFactorisation,
}


def rescale(rv, diagonal):
    """The Gaussian of ``D x`` for a diagonal ``D`` given as a structure-lifted vector."""

    def kernel(m, L, s):
        return s.reshape(s.shape + (1,) * (m.ndim - 1)) * m, s[:, None] * L

    return rv.replace(*rv.lift(kernel, diagonal))


def rescale_conditional(cond, diagonal):
    """The conditional of ``D x | D y`` from ``p(x | y)``, for a diagonal ``D``."""

    def kernel(m, L, g, s):
        return s[:, None] * g / s[None, :]

    gain = cond.noise.lift(kernel, cond.gain, diagonal)
    return randvars.Conditional(gain, rescale(cond.noise, diagonal))


def scale_noise(noise_cholesky, output_scale):
    """Multiply a lifted noise factor by a scalar or per-block output scale."""
    output_scale = jnp.asarray(output_scale)
    if output_scale.ndim == 1:
        return noise_cholesky * output_scale[:, None, None]
    return noise_cholesky * output_scale


def identity_conditional(rv):
    """``p(x | y) = δ(x - y)`` in the structure of ``rv``."""

    def kernel(m, L):
        return jnp.eye(L.shape[0], dtype=L.dtype)

    gain = rv.lift(kernel)
    return randvars.Conditional(gain, rv.replace(jnp.zeros_like(rv.mean), jnp.zeros_like(rv.cholesky)))

