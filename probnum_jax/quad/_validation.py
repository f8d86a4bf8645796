"""Input validation shared by the quadrature routines.

Shape and type mistakes raise at trace time. Value mistakes (NaN, nodes outside
the domain, non-positive parameters) raise a ``ValueError`` straight away when
the values are concrete, and are reported in ``result`` when they are traced
(inside ``jit``/``vmap``/``grad``), where ``throw=True`` turns them into errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._results import RESULTS


def is_concrete(x) -> bool:
    """True if ``x`` holds values now (no leaf is a tracer inside jit/vmap/grad)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def as_nodes(nodes, dim: int) -> Array:
    """Check the shape and dtype of ``nodes`` against the measure's dimension."""
    nodes = jnp.asarray(nodes)
    if not jnp.issubdtype(nodes.dtype, jnp.floating):
        nodes = nodes.astype(jnp.result_type(float))
    if nodes.ndim != 2:
        raise ValueError(f"nodes must be a 2-D array of shape [n, d], got shape {nodes.shape}.")
    if nodes.shape[1] != dim:
        raise ValueError(
            f"nodes have dimension d={nodes.shape[1]} (shape {nodes.shape}), but the measure "
            f"has dimension {dim}."
        )
    if nodes.shape[0] < 1:
        raise ValueError("nodes must contain at least one node, got shape {nodes.shape}.")
    return nodes


def as_fvals(fvals, num_nodes: int) -> Array:
    """Check that ``fvals`` is ``[n]`` or ``[n, m]`` with ``n`` the number of nodes."""
    fvals = jnp.asarray(fvals)
    if not jnp.issubdtype(fvals.dtype, jnp.floating):
        fvals = fvals.astype(jnp.result_type(float))
    if fvals.ndim not in (1, 2) or fvals.shape[0] != num_nodes:
        raise ValueError(
            f"fvals must have shape [n] or [n, m] with n={num_nodes} (the number of nodes), "
            f"got shape {fvals.shape}."
        )
    return fvals


def flag(result, bad: Array, code, message):
    """Record ``code`` in ``result`` where ``bad``; raise ``ValueError`` if concrete and bad.

    ``message`` is a string or a zero-argument callable returning one (called only
    when raising, so it may inspect concrete values).
    """
    if is_concrete(bad):
        if bool(np.any(np.asarray(bad))):
            raise ValueError(message() if callable(message) else message)
        return result
    return RESULTS.where(jnp.any(bad), code, result)
