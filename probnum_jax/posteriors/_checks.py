"""Trace-time validation shared by the curvature and Laplace functions.

Shape, dtype and structure mistakes raise ``ValueError``/``TypeError`` naming
the argument. Value checks (finiteness, positivity) run here only on concrete
inputs; inside ``jit`` they are reported through a ``result`` field instead.
"""

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True if ``x`` holds values now (not a tracer inside jit/vmap/grad)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def check_params(params):
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError("params must be a pytree with at least one array leaf, got no leaves.")
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise TypeError(
                f"params leaves must be floating-point arrays, got a leaf of dtype {jnp.result_type(leaf)}. "
                "Partition out non-trainable leaves first (e.g. with posteriors.from_equinox)."
            )
    if is_concrete(leaves):
        for leaf in leaves:
            if not np.all(np.isfinite(np.asarray(leaf))):
                raise ValueError("params must be finite, got a leaf containing NaN or inf.")


def check_model_data(model_fn, params, x, y, likelihood):
    """Check that ``model_fn(params, x)`` is ``[n, C]`` and ``y`` matches; returns ``(n, C)``."""
    if not hasattr(x, "shape") or x.ndim < 1:
        raise ValueError(f"x must be an array with a leading batch axis, got {type(x).__name__}.")
    if not hasattr(y, "shape"):
        raise TypeError(f"y must be an array, got {type(y).__name__}.")
    n = x.shape[0]
    try:
        out = jax.eval_shape(model_fn, params, x)
    except Exception as e:  # noqa: BLE001 - re-raised with context
        raise TypeError(
            f"Calling model_fn(params, x) failed ({type(e).__name__}: {e}). Models follow the "
            "convention model_fn(params, x[n, ...]) -> outputs[n, C]."
        ) from e
    if not hasattr(out, "shape") or len(out.shape) != 2 or out.shape[0] != n:
        raise ValueError(
            f"model_fn(params, x) must return outputs of shape [n, C] = [{n}, C] for x of shape "
            f"{x.shape}, got {getattr(out, 'shape', type(out).__name__)}."
        )
    num_outputs = out.shape[1]
    if likelihood == "classification":
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise TypeError(f"y must hold integer class labels for classification, got dtype {y.dtype}.")
        if y.shape != (n,):
            raise ValueError(f"y must have shape [n] = [{n}] (one label per input) for classification, got {y.shape}.")
        if is_concrete(y) and n > 0:
            yy = np.asarray(y)
            if yy.min() < 0 or yy.max() >= num_outputs:
                raise ValueError(
                    f"y must hold labels in [0, {num_outputs}) to match the model's {num_outputs} "
                    f"outputs, got labels in [{yy.min()}, {yy.max()}]."
                )
    else:
        if y.shape != (n, num_outputs):
            raise ValueError(
                f"y must have the model output's shape [n, C] = [{n}, {num_outputs}] for regression, got {y.shape}."
            )
    return n, num_outputs


def check_positive(name, value):
    if is_concrete(value) and not np.all(np.asarray(value) > 0):
        raise ValueError(f"{name} must be > 0, got {np.asarray(value)}.")
