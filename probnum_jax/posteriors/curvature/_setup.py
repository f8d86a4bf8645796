"""Argument checks and the factor pass shared by the curvature functions."""

import jax

from .. import _checks
from .._factors import batch_factors
from .._jaxpr_layers import layer_graph
from .._likelihoods import check_likelihood


def prepare(model_fn, params, x, y, likelihood):
    """Validate the arguments; return ``(leaves, treedef, graph, num_outputs)``."""
    check_likelihood(likelihood)
    _checks.check_params(params)
    _, num_outputs = _checks.check_model_data(model_fn, params, x, y, likelihood)
    leaves, treedef = jax.tree.flatten(params)
    return leaves, treedef, layer_graph(model_fn, params, x), num_outputs


def all_factors(model_fn, params, x, y, likelihood, cotangent_fn, extra=None):
    """Factors of every leaf; ``cotangent_fn(likelihood, f, y_i, extra_i) -> [K, C]``."""
    leaves, treedef, graph, _ = prepare(model_fn, params, x, y, likelihood)
    per_sample_extra = (y, extra)

    def cotangents(f, e):
        return cotangent_fn(likelihood, f, *e)

    _, factors = batch_factors(graph, leaves, tuple(range(len(leaves))), x, cotangents, per_sample_extra)
    return treedef, graph, factors
