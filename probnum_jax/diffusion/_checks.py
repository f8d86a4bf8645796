"""Trace-time validation shared by the samplers and the likelihood."""

import jax
import jax.numpy as jnp

from ._sde import AbstractSDE


def check_sde(sde):
    if not isinstance(sde, AbstractSDE):
        raise TypeError(f"sde must be a VPSDE, SubVPSDE, VESDE or EDM instance, got {type(sde).__name__}.")


def check_score_fn(score_fn, shape, dtype):
    """``score_fn(x, t)`` must map one sample of ``shape`` to an array of that shape."""
    x = jax.ShapeDtypeStruct(shape, dtype)
    t = jax.ShapeDtypeStruct((), dtype)
    try:
        out = jax.eval_shape(score_fn, x, t)
    except Exception as e:  # noqa: BLE001 - re-raised with context
        raise TypeError(
            f"Calling score_fn(x, t) with one sample x of shape {shape} and a scalar t failed "
            f"({type(e).__name__}: {e})."
        ) from e
    if not hasattr(out, "shape") or out.shape != tuple(shape):
        raise ValueError(
            f"score_fn(x, t) must return an array of the sample shape {tuple(shape)}, "
            f"got {getattr(out, 'shape', type(out).__name__)}. It takes ONE sample (the sampler vmaps it)."
        )


def check_positive(name, value):
    if not jnp.all(jnp.asarray(value) > 0) or not jnp.all(jnp.isfinite(jnp.asarray(value))):
        raise ValueError(f"{name} must be finite and positive, got {value!r}.")


def check_count(name, value, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
