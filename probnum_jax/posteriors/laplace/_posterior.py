"""The Laplace posterior: a Gaussian over the subset parameters at the MAP.

The posterior precision is ``curvature_scale * H + P0`` with ``H`` the GGN
(or an approximation of it) of the summed negative log-likelihood,
``curvature_scale = 1 / sigma_noise**2`` for regression (1 for
classification), and ``P0`` the prior precision. Storing ``H`` at unit noise
lets the marginal likelihood move ``sigma_noise`` and ``P0`` without a new
pass over the data (laplace-torch's convention, Daxberger et al., 2021).
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._factors import batch_factors, to_canonical
from .._jaxpr_layers import layer_graph
from ._results import RESULTS
from ._subset import Subset


class LaplacePosterior(eqx.Module):
    """Abstract Laplace posterior ``N(theta_MAP, (curvature_scale * H + P0)^{-1})``.

    Attributes:
        model_fn: the model, ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: the MAP parameters (all of them; only ``subset`` is random).
        subset: which parameters the Gaussian covers.
        likelihood: ``"classification"`` or ``"regression"``.
        prior_precision: per subset leaf, an array broadcastable to it.
        sigma_noise: the observation noise (regression).
        loss: summed negative log-likelihood at the MAP (unit noise for regression,
            without constants).
        num_data: number of training samples.
        num_outputs: number of model outputs ``C``.
        input_spec: shape (without the batch axis) and dtype of one input.
        result: :class:`RESULTS` of the fit.
    """

    model_fn: Callable = eqx.field(static=True)
    params: PyTree
    subset: Subset
    likelihood: str = eqx.field(static=True)
    prior_precision: tuple
    sigma_noise: Float[Array, ""]
    loss: Float[Array, ""]
    num_data: Float[Array, ""]
    num_outputs: int = eqx.field(static=True)
    input_spec: tuple = eqx.field(static=True)
    result: RESULTS

    # Structure-specific pieces -------------------------------------------------

    @abc.abstractmethod
    def log_det_precision(self, prior: tuple, sigma_noise) -> Float[Array, ""]:
        """``log det`` of the posterior precision for the given hyperparameters."""

    @abc.abstractmethod
    def sample_deviation(self, key: PRNGKeyArray, num_samples: int) -> tuple:
        """Draws of ``theta - theta_MAP`` over the subset, each ``[num_samples, *shape]``."""

    @abc.abstractmethod
    def predictive_features(self, x: Array) -> PyTree:
        """Quantities at test inputs ``x`` that do not depend on the hyperparameters."""

    @abc.abstractmethod
    def functional_covariance_from(self, features: PyTree, prior: tuple, sigma_noise) -> Array:
        """``J Sigma J^T`` per test input, ``[n, C, C]``, from :meth:`predictive_features`."""

    # Shared ---------------------------------------------------------------------

    @property
    def mean(self) -> tuple:
        """The subset parameters at the MAP."""
        return self.subset.restrict(self.params)

    @property
    def sub_shapes(self) -> tuple:
        return tuple(jnp.shape(m) for m in self.mean)

    @property
    def num_params(self) -> int:
        """Number of subset parameters."""
        return int(sum(np.prod(s, dtype=int) for s in self.sub_shapes))

    def curvature_scale(self, sigma_noise):
        if self.likelihood == "regression":
            return 1.0 / sigma_noise**2
        return jnp.ones_like(sigma_noise)

    def log_likelihood(self, sigma_noise=None) -> Float[Array, ""]:
        """Log-likelihood of the training data at the MAP."""
        sigma = self.sigma_noise if sigma_noise is None else sigma_noise
        if self.likelihood == "classification":
            return -self.loss
        count = self.num_data * self.num_outputs
        return -self.loss / sigma**2 - count * (jnp.log(sigma) + 0.5 * jnp.log(2 * jnp.pi))

    def sample(self, key: PRNGKeyArray, num_samples: int) -> PyTree:
        """Draw parameter pytrees from the posterior (non-subset leaves at the MAP).

        Args:
            key: random key.
            num_samples: number of draws.

        Returns:
            A pytree like ``params`` whose leaves have a leading axis ``num_samples``.
        """
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")
        return _sample(self, key, num_samples)

    def functional_covariance(self, x: Array) -> Float[Array, "n C C"]:
        """Covariance of the linearised outputs ``J(x) Sigma J(x)^T`` at inputs ``x``."""
        return self.functional_covariance_from(self.predictive_features(x), self.prior_precision, self.sigma_noise)

    def layer_graph(self):
        """The model's layers (see :mod:`probnum_jax.posteriors._jaxpr_layers`)."""
        shape, dtype = self.input_spec
        return layer_graph(self.model_fn, self.params, jax.ShapeDtypeStruct((1,) + shape, dtype))

    def sub_model(self, sub: tuple, x: Array) -> Array:
        """The model as a function of the subset parameters."""
        return self.model_fn(self.subset.embed(sub, self.params), x)


def standard_normal_parts(key, num_samples, shapes, dtype) -> tuple:
    """Standard-normal draws ``[num_samples, *shape]`` for each shape, from one call.

    One draw for all parts keeps a single random-number kernel in the program.
    """
    sizes = [int(np.prod(s, dtype=int)) for s in shapes]
    eps = jax.random.normal(key, (num_samples, sum(sizes)), dtype)
    parts = jnp.split(eps, np.cumsum(sizes)[:-1], axis=1)
    return tuple(p.reshape((num_samples,) + tuple(s)) for p, s in zip(parts, shapes))


@eqx.filter_jit
def _sample(post, key, num_samples):
    deviation = post.sample_deviation(key, num_samples)
    sub = tuple(m[None] + d for m, d in zip(post.mean, deviation))
    return post.subset.embed_batch(sub, post.params)


# Factor-based functional covariance (diag, kron, lowrank) ---------------------


def test_factors(post: LaplacePosterior, x) -> dict:
    """Per test input and output, the gradient factors of the subset leaves (``K = C``)."""
    leaves = jax.tree.leaves(post.params)
    eye = jnp.eye(post.num_outputs, dtype=jnp.result_type(leaves[0]))
    _, factors = batch_factors(post.layer_graph(), leaves, post.subset.leaves, x, lambda f, _: eye)
    return factors


def factor_covariance(factors: dict, variances: dict) -> Array:
    """``sum_leaves sum_entries J_c[e] J_c'[e] v[e]`` from factors, ``[n, C, C]``.

    ``variances[leaf]`` is a canonical ``[d_in, d_out]`` array (a diagonal
    covariance in the basis the factors are written in).
    """
    total = 0.0
    for leaf, f in factors.items():
        v = variances[leaf]
        if f.rows.shape[1] == 1:
            w = (f.rows[:, 0] ** 2) @ v  # [n, d_out]
            d = f.deltas[:, :, 0]  # [n, C, d_out]
            total = total + jnp.einsum("nco,no,ndo->ncd", d, w, d)
        else:
            g = jnp.einsum("nti,ncto->ncio", f.rows, f.deltas)
            total = total + jnp.einsum("ncio,io,ndio->ncd", g, v, g)
    return total


def canonical_variances(post: LaplacePosterior, sub_variances: tuple) -> dict:
    """Subset-shaped variances as canonical arrays of the whole leaves (zero outside)."""
    graph = post.layer_graph()
    leaves = jax.tree.leaves(post.params)
    out = {}
    for leaf, idx, var in zip(post.subset.leaves, post.subset.indices, sub_variances):
        shape = jnp.shape(leaves[leaf])
        if idx is None:
            full = jnp.broadcast_to(var, shape)
        else:
            full = jnp.zeros(int(np.prod(shape, dtype=int)), jnp.result_type(var)).at[idx].set(var).reshape(shape)
        out[leaf] = to_canonical(graph, leaf, full)
    return out
