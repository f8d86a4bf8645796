"""Trace-time validation of ``solve`` arguments: clear errors that name the argument."""

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True if ``x`` holds values now (not a tracer inside jit/vmap/grad)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def as_initial_value(y0):
    if not hasattr(y0, "shape"):
        y0 = jnp.asarray(y0)
    if y0.ndim != 1:
        raise ValueError(f"y0 must be a 1-D array of shape [d], got shape {y0.shape}.")
    if not jnp.issubdtype(y0.dtype, jnp.floating):
        y0 = y0.astype(jnp.result_type(float))
    if is_concrete(y0) and not np.all(np.isfinite(np.asarray(y0))):
        raise ValueError(f"y0 must be finite, got {np.asarray(y0)} (contains NaN or inf).")
    return jnp.asarray(y0)


def check_vector_field(vector_field, t0, y0, args):
    try:
        out = jax.eval_shape(vector_field, t0, y0, args)
    except Exception as e:  # noqa: BLE001 - re-raised with context
        raise TypeError(
            f"Calling the vector field as f(t0, y0, args) failed ({type(e).__name__}: {e}). "
            "Vector fields follow the diffrax convention f(t, y, args) -> dy/dt."
        ) from e
    check_vector_field_output(out, y0, "f(t0, y0, args)")


def check_vector_field_output(out, y0, call):
    """``out`` (a shape/dtype struct) must match ``y0``; ``call`` names the call in the message."""
    if not hasattr(out, "shape") or out.shape != y0.shape:
        raise ValueError(
            f"{call} must return an array of y0's shape {y0.shape}, "
            f"got {getattr(out, 'shape', type(out).__name__)}."
        )
    if out.dtype != y0.dtype:
        raise TypeError(f"{call} must return y0's dtype {y0.dtype}, got {out.dtype}.")


def check_positive(name, value):
    if is_concrete(value) and not np.all(np.asarray(value) > 0):
        raise ValueError(f"{name} must be > 0, got {value}.")


def check_interval(t0, t1):
    if is_concrete((t0, t1)) and not float(t1) > float(t0):
        raise ValueError(f"t1 must be greater than t0, got t0={float(t0)}, t1={float(t1)}.")


def check_save_at(save_at, t0, t1):
    if save_at.ndim != 1 or save_at.shape[0] < 1:
        raise ValueError(f"save_at must be a non-empty 1-D array of times, got shape {save_at.shape}.")
    if is_concrete((save_at, t0, t1)):
        s = np.asarray(save_at)
        if np.any(np.diff(s) <= 0):
            raise ValueError("save_at must be strictly increasing.")
        if s[0] < float(t0) or s[-1] > float(t1):
            raise ValueError(
                f"save_at must lie in [t0, t1] = [{float(t0)}, {float(t1)}], "
                f"got values in [{s[0]}, {s[-1]}]."
            )


def invalid_input_flag(y0, t0, t1, save_at):
    """Value checks for traced inputs (reported through ``sol.result``)."""
    bad = ~jnp.all(jnp.isfinite(y0)) | ~(t1 > t0)
    if save_at is not None:
        bad = bad | jnp.any(jnp.diff(save_at) <= 0) | (save_at[0] < t0) | (save_at[-1] > t1)
    return bad
