"""Layer applications ("sites") in canonical matrix form.

A site of a ``dot_general`` or ``conv_general_dilated`` with a parameter
kernel is rewritten as ``outputs[T, d_out] = rows[T, d_in] @ kernel[d_in, d_out]``:
``rows`` are the layer's inputs with the contracted axes last (dense), or the
im2col patches (convolution; Grosse & Martens, 2016). A site records how to
get its rows from the layer input, how to place ``[T, d_out]`` arrays in the
layer's output layout, and where each canonical kernel entry sits in the
flattened parameter leaf.
"""

import dataclasses
import itertools
import math

import jax.numpy as jnp
import numpy as np
from jax import lax


@dataclasses.dataclass(frozen=True)
class View:
    """A value that is parameter leaf ``leaf`` seen through the ops ``ops``."""

    leaf: int
    ops: tuple = ()


@dataclasses.dataclass(frozen=True, eq=False)
class Site:
    """One layer application in canonical form (static, built at trace time)."""

    leaf: int
    kind: str  # "dense" or "conv"
    num_rows: int  # T
    d_in: int
    d_out: int
    kernel_index: np.ndarray  # [d_in, d_out] flat indices into the leaf
    input_to_rows: object  # callable: layer input -> [T, d_in]
    rows_to_output: object  # callable: [T, d_out] -> layer output layout


def replay_view(index: np.ndarray, eqn) -> np.ndarray:
    """Apply a view op of the jaxpr to an integer index array (numpy)."""
    name, p = eqn.primitive.name, eqn.params
    if name == "transpose":
        return np.transpose(index, p["permutation"])
    if name in ("reshape", "broadcast_in_dim"):
        return index.reshape(eqn.outvars[0].aval.shape)
    if name == "squeeze":
        return np.squeeze(index, axis=tuple(p["dimensions"]))
    return index  # convert_element_type, copy


def dense_site(leaf_shape, view, eqn, kernel_pos):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    if lb or rb:
        return None
    x_var, k_var = eqn.invars[1 - kernel_pos], eqn.invars[kernel_pos]
    kc, xc = (lc, rc) if kernel_pos == 0 else (rc, lc)
    kshape, xshape = k_var.aval.shape, x_var.aval.shape
    kf = [d for d in range(len(kshape)) if d not in kc]
    xf = [d for d in range(len(xshape)) if d not in xc]
    d_in = math.prod(kshape[d] for d in kc)
    d_out = math.prod(kshape[d] for d in kf)
    num_rows = math.prod(xshape[d] for d in xf)
    x_perm = tuple(xf) + tuple(xc)
    out_shape = eqn.outvars[0].aval.shape
    # dot_general's output axes are (lhs free..., rhs free...).
    if kernel_pos == 0:
        perm_to_rows = tuple(range(len(kf), len(kf) + len(xf))) + tuple(range(len(kf)))
    else:
        perm_to_rows = tuple(range(len(out_shape)))
    rows_shape = tuple(out_shape[d] for d in perm_to_rows)
    inverse = tuple(np.argsort(perm_to_rows))

    def input_to_rows(x):
        return jnp.transpose(x, x_perm).reshape(num_rows, d_in)

    def rows_to_output(r):
        return jnp.transpose(r.reshape(rows_shape), inverse)

    kernel_index = _kernel_index(leaf_shape, view, tuple(kc) + tuple(kf), d_in, d_out)
    return Site(view.leaf, "dense", num_rows, d_in, d_out, kernel_index, input_to_rows, rows_to_output)


def conv_site(leaf_shape, view, eqn, kernel_pos):
    p = eqn.params
    if kernel_pos != 1 or p["feature_group_count"] != 1 or p["batch_group_count"] != 1:
        return None
    dn = p["dimension_numbers"]
    rhs_spec, out_spec = dn.rhs_spec, dn.out_spec
    kshape = eqn.invars[1].aval.shape
    out_shape = eqn.outvars[0].aval.shape
    filter_shape = tuple(kshape[d] for d in rhs_spec[2:])
    d_in = kshape[rhs_spec[1]] * math.prod(filter_shape)
    d_out = kshape[rhs_spec[0]]
    rows_perm = (out_spec[0],) + tuple(out_spec[2:]) + (out_spec[1],)
    num_rows = math.prod(out_shape) // d_out
    rows_shape = tuple(out_shape[d] for d in rows_perm)
    inverse = tuple(np.argsort(rows_perm))

    def input_to_rows(x):
        patches = lax.conv_general_dilated_patches(
            x,
            filter_shape,
            p["window_strides"],
            p["padding"],
            lhs_dilation=p["lhs_dilation"],
            rhs_dilation=p["rhs_dilation"],
            dimension_numbers=dn,
            precision=p["precision"],
        )
        return jnp.transpose(patches, rows_perm).reshape(num_rows, d_in)

    def rows_to_output(r):
        return jnp.transpose(r.reshape(rows_shape), inverse)

    kernel_perm = (rhs_spec[1],) + tuple(rhs_spec[2:]) + (rhs_spec[0],)
    kernel_index = _kernel_index(leaf_shape, view, kernel_perm, d_in, d_out)
    return Site(view.leaf, "conv", num_rows, d_in, d_out, kernel_index, input_to_rows, rows_to_output)


def _kernel_index(leaf_shape, view, perm, d_in, d_out):
    index = np.arange(math.prod(leaf_shape)).reshape(leaf_shape)
    for eqn in view.ops:
        index = replay_view(index, eqn)
    return np.transpose(index, perm).reshape(d_in, d_out)


def axes_permutation(shape, index):
    """Axes ``perm`` with ``transpose(arange(size).reshape(shape), perm).ravel() == index.ravel()``."""
    base = np.arange(math.prod(shape)).reshape(shape)
    for perm in itertools.permutations(range(len(shape))):
        if np.array_equal(np.transpose(base, perm).ravel(), index.ravel()):
            return perm
    return None
