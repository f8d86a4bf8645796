"""Adapters from equinox and flax models to the functional ``model_fn(params, x)``.

Every function of :mod:`probnum_jax.posteriors` takes a model as a pure
function ``model_fn(params, x[n, ...]) -> outputs[n, C]`` of a parameter
pytree. The adapters below split a stateful module into that function and
its trainable parameters; everything else (static fields, non-trainable
collections) is closed over.
"""

from collections.abc import Callable

import equinox as eqx
import jax


def from_equinox(model: eqx.Module, *, batched: bool = False, filter_spec=eqx.is_inexact_array):
    """Split an equinox module into ``(model_fn, params)`` with :func:`equinox.partition`.

    Args:
        model: an equinox module mapping one input to its outputs (like
            ``eqx.nn.MLP``), or a batch to a batch if ``batched=True``.
        batched: whether ``model`` already maps ``x[n, ...]`` to ``[n, C]``;
            otherwise ``model_fn`` vmaps it over the leading axis.
        filter_spec: which leaves are parameters (default: floating-point arrays).

    Returns:
        ``(model_fn, params)`` with ``model_fn(params, x) -> outputs[n, C]`` and
        ``params`` the filtered module (a pytree with ``None`` elsewhere).

    Example:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from probnum_jax import posteriors
        >>> mlp = eqx.nn.MLP(2, 3, 8, 1, key=jax.random.key(0))
        >>> model_fn, params = posteriors.from_equinox(mlp)
        >>> model_fn(params, jnp.ones((5, 2))).shape
        (5, 3)
    """
    params, static = eqx.partition(model, filter_spec)

    def model_fn(params, x):
        module = eqx.combine(params, static)
        return module(x) if batched else jax.vmap(module)(x)

    return model_fn, params


def from_nnx(module, *, wrt=None):
    """Split a flax ``nnx`` module into ``(model_fn, params)`` with ``nnx.split``.

    Args:
        module: an ``nnx.Module`` mapping a batch ``x[n, ...]`` to ``[n, C]``.
        wrt: the variable filter that selects the parameters (default ``nnx.Param``);
            other state (batch statistics, RNG counters) is held fixed.

    Returns:
        ``(model_fn, params)``; ``params`` is an ``nnx.State`` (a pytree).

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from probnum_jax import posteriors
        >>> net = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        >>> model_fn, params = posteriors.from_nnx(net)
        >>> model_fn(params, jnp.ones((5, 2))).shape
        (5, 3)
    """
    from flax import nnx

    graphdef, params, rest = nnx.split(module, nnx.Param if wrt is None else wrt, ...)

    def model_fn(params, x):
        return nnx.merge(graphdef, params, rest)(x)

    return model_fn, params


def from_linen(module, variables, *, method: Callable | str | None = None):
    """Wrap a flax ``linen`` module and its variables into ``(model_fn, params)``.

    Args:
        module: a ``flax.linen.Module`` mapping ``x[n, ...]`` to ``[n, C]``.
        variables: the result of ``module.init``; ``variables["params"]`` are the
            parameters, other collections are held fixed.
        method: passed to ``module.apply``.

    Returns:
        ``(model_fn, params)`` with ``model_fn(params, x) = module.apply({"params": params, ...}, x)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import flax.linen as nn
        >>> from probnum_jax import posteriors
        >>> dense = nn.Dense(3)
        >>> variables = dense.init(jax.random.key(0), jnp.ones((1, 2)))
        >>> model_fn, params = posteriors.from_linen(dense, variables)
        >>> model_fn(params, jnp.ones((5, 2))).shape
        (5, 3)
    """
    if "params" not in variables:
        raise ValueError(f"variables must contain a 'params' collection, got keys {sorted(variables)}.")
    rest = {k: v for k, v in variables.items() if k != "params"}

    def model_fn(params, x):
        return module.apply({"params": params, **rest}, x, method=method)

    return model_fn, variables["params"]
