"""Argument checks and the jitted factor pass shared by the curvature functions."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _checks, _factors
from .._jaxpr_layers import layer_graph
from .._likelihoods import (
    check_likelihood,
    draws_for_sampled_sqrt,
    hessian_sqrt,
    loss_gradient,
    sampled_hessian_sqrt,
)


def check(model_fn, params, x, y, likelihood):
    """Validate the arguments (trace-time errors naming the argument)."""
    check_likelihood(likelihood)
    _checks.check_params(params)
    return _checks.check_model_data(model_fn, params, x, y, likelihood)


def _gradient_rows(likelihood, f, y_i, draws_i):
    return loss_gradient(likelihood, f, y_i)


def _exact_rows(likelihood, f, y_i, draws_i):
    return hessian_sqrt(likelihood, f)


def _sampled_rows(likelihood, f, y_i, draws_i):
    return sampled_hessian_sqrt(likelihood, f, draws_i)


COTANGENTS = {"gradient": _gradient_rows, "exact": _exact_rows, "sampled": _sampled_rows}


def _variance(graph, leaf, f, n):
    mean_sq = _factors.sum_of_squares(f) / n
    mean = _factors.gradient(f) / n
    return _factors.to_leaf(graph, leaf, jnp.maximum(mean_sq - mean**2, 0.0))


def _per_sample(graph, leaf, f, n):
    if graph.leaf_perm[leaf] == (1, 0):  # a transposed kernel (e.g. equinox's [out, in]): write it directly
        return jnp.einsum("nti,nto->noi", f.rows, f.deltas[:, 0])
    return _factors.to_leaf(graph, leaf, _factors.per_sample(f))


REDUCERS = {
    "per_sample": _per_sample,
    "squared_norms": lambda graph, leaf, f, n: _factors.squared_norms(f),
    "sum_of_squares": lambda graph, leaf, f, n: _factors.to_leaf(graph, leaf, _factors.sum_of_squares(f)),
    "variance": _variance,
}


@eqx.filter_jit
def reduce_factors(model_fn, params, x, y, likelihood, cotangents, reducer, key=None, num_samples=1):
    """One factor pass over the batch, reduced per leaf; returns a pytree like ``params``.

    ``cotangents`` names the output rows backpropagated per sample (a key in
    :data:`COTANGENTS`); ``reducer`` is a key in :data:`REDUCERS` or a callable
    ``(graph, leaf, factors, n) -> leaf result``.
    """
    leaves, treedef = jax.tree.flatten(params)
    graph = layer_graph(model_fn, params, x)
    rows = COTANGENTS[cotangents]
    n = x.shape[0]
    if key is None:
        draws = jnp.zeros((n,))
    else:
        num_outputs = jax.eval_shape(model_fn, params, x[:1]).shape[1]
        draws = draws_for_sampled_sqrt(likelihood, key, n, num_samples, num_outputs, jnp.result_type(*leaves))

    def cotangent_fn(f, extra):
        y_i, draws_i = extra
        return rows(likelihood, f, y_i, draws_i)

    _, factors = _factors.batch_factors(graph, leaves, tuple(range(len(leaves))), x, cotangent_fn, (y, draws))
    reduce = REDUCERS[reducer] if isinstance(reducer, str) else reducer
    return jax.tree.unflatten(treedef, [reduce(graph, leaf, f, x.shape[0]) for leaf, f in factors.items()])
