"""Adapters from neural-network libraries to the ``net_fn(params, x, t)`` convention.

The diffusion loss, trainer and samplers take a pure function of explicit
parameters. These adapters split a stateful module into that function and its
trainable parameters (a pytree an optax optimiser can update).
"""

import equinox as eqx


def from_equinox(module):
    """Split an equinox module ``module(x, t)`` into ``(net_fn, params)`` with ``net_fn(params, x, t)``.

    The parameters are the module's inexact (floating-point) arrays
    (``eqx.is_inexact_array``); everything else is closed over.

    Args:
        module: an ``eqx.Module`` called as ``module(x, t)``.

    Returns:
        ``(net_fn, params)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import diffusion
        >>> net = diffusion.ScoreMLP(2, key=jax.random.key(0), width=16, depth=1)
        >>> net_fn, params = diffusion.from_equinox(net)
        >>> bool(jnp.allclose(net_fn(params, jnp.ones(2), 0.5), net(jnp.ones(2), 0.5)))
        True
    """
    if not isinstance(module, eqx.Module):
        raise TypeError(f"module must be an equinox.Module, got {type(module).__name__}.")
    params, static = eqx.partition(module, eqx.is_inexact_array)

    def net_fn(params, x, t):
        return eqx.combine(params, static)(x, t)

    return net_fn, params


def from_nnx(module):
    """Split a flax ``nnx.Module`` ``module(x, t)`` into ``(net_fn, params)`` with ``net_fn(params, x, t)``.

    The parameters are the module's ``nnx.Param`` state; any other state (RNG
    streams, batch statistics) is held fixed at its current value.

    Args:
        module: an ``nnx.Module`` called as ``module(x, t)``.

    Returns:
        ``(net_fn, params)`` with ``params`` an ``nnx.State``.

    Example:
        >>> import jax.numpy as jnp
        >>> from flax import nnx
        >>> from probnum_jax import diffusion
        >>> class Net(nnx.Module):
        ...     def __init__(self, rngs):
        ...         self.linear = nnx.Linear(3, 2, rngs=rngs)
        ...     def __call__(self, x, t):
        ...         return self.linear(jnp.concatenate([x, jnp.atleast_1d(t)]))
        >>> net_fn, params = diffusion.from_nnx(Net(nnx.Rngs(0)))
        >>> net_fn(params, jnp.ones(2), 0.5).shape
        (2,)
    """
    from flax import nnx

    if not isinstance(module, nnx.Module):
        raise TypeError(f"module must be a flax nnx.Module, got {type(module).__name__}.")
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)

    def net_fn(params, x, t):
        return nnx.merge(graphdef, params, rest)(x, t)

    return net_fn, params
