"""Diagonal second-order quantities: the GGN (exact and Monte Carlo) and the Hessian.

The generalised Gauss-Newton of the summed loss is
``G = sum_i J_i^T Lambda_i J_i`` with ``J_i`` the Jacobian of the outputs and
``Lambda_i`` the Hessian of the loss with respect to them. Writing
``Lambda_i = S_i^T S_i``, ``diag(G) = sum_i sum_k (J_i^T s_ik)**2``: one
backward pass per row ``s_ik`` (``C`` exact rows, or ``M`` sampled ones), as in
BackPACK's ``DiagGGNExact``/``DiagGGNMC`` (Dangel, Kunstner & Hennig, 2020).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .. import _factors
from .._jaxpr_layers import layer_graph
from .._likelihoods import sample_loss, sum_loss
from ._setup import check, reduce_factors


def ggn_diag(
    model_fn, params: PyTree, x: Float[Array, "n ..."], y: Array, *, likelihood: str = "classification"
) -> PyTree:
    """Exact diagonal of the generalised Gauss-Newton matrix of the summed loss.

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: parameter pytree.
        x: inputs ``[n, ...]``.
        y: integer labels ``[n]`` (classification) or targets ``[n, C]`` (regression).
        likelihood: ``"classification"`` (softmax cross-entropy, summed) or
            ``"regression"`` (``0.5 * ||y - f||^2`` summed: unit noise; scale by
            ``1 / sigma**2`` for noise ``sigma``).

    Returns:
        A pytree like ``params``: ``diag(sum_i J_i^T Lambda_i J_i)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> params = {"w": jnp.zeros((3, 2))}
        >>> x = jnp.eye(3)
        >>> g = curvature.ggn_diag(model_fn, params, x, jnp.array([0, 1, 0]))["w"]
        >>> jnp.round(g, 4).tolist()  # softmax of zero logits, p = 1/2: p (1 - p)
        [[0.25, 0.25], [0.25, 0.25], [0.25, 0.25]]
    """

    check(model_fn, params, x, y, likelihood)
    return reduce_factors(model_fn, params, x, y, likelihood, "exact", "sum_of_squares")


def ggn_diag_mc(
    model_fn,
    params: PyTree,
    x: Float[Array, "n ..."],
    y: Array,
    *,
    key: PRNGKeyArray,
    num_samples: int = 1,
    likelihood: str = "classification",
) -> PyTree:
    """Monte-Carlo estimate of the GGN diagonal (BackPACK's ``DiagGGNMC``).

    Each sample backpropagates ``num_samples`` rows drawn with
    ``E[s s^T] = Lambda_i``: for classification the loss gradient at a label
    drawn from the model, for regression a standard-normal vector. With one
    draw the cost is that of one per-sample gradient, independent of ``C``.

    Args:
        model_fn, params, x, y, likelihood: as in :func:`ggn_diag`.
        key: random key for the draws.
        num_samples: draws per sample.

    Returns:
        A pytree like ``params``, unbiased for :func:`ggn_diag`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> params = {"w": jnp.zeros((3, 2))}
        >>> g = curvature.ggn_diag_mc(model_fn, params, jnp.eye(3), jnp.array([0, 1, 0]), key=jax.random.key(0))
        >>> g["w"].shape
        (3, 2)
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")
    check(model_fn, params, x, y, likelihood)
    return reduce_factors(
        model_fn, params, x, y, likelihood, "sampled", "sum_of_squares", key=key, num_samples=num_samples
    )


def hessian_diag(
    model_fn, params: PyTree, x: Float[Array, "n ..."], y: Array, *, likelihood: str = "classification"
) -> PyTree:
    """Exact diagonal of the Hessian of the summed loss (BackPACK's ``DiagHessian``).

    A layer's output ``z = R W`` is linear in its kernel, so
    ``d^2 loss / dW_kj^2 = sum_{t,t'} R_tk R_t'k d^2 loss / dz_tj dz_t'j``: each
    sample needs the Hessian of its loss with respect to the layer's outputs,
    ``T * d_out`` forward-over-reverse products, not one per parameter. Any
    other leaf (biases, ...) takes ``size`` Hessian-vector products of the
    summed loss, and so does a kernel applied more than once (its rows then
    depend on it). The cost therefore grows with the layer widths, like
    BackPACK's, and this is the most expensive quantity of the module.

    Args:
        model_fn, params, x, y, likelihood: as in :func:`ggn_diag`.

    Returns:
        A pytree like ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: jnp.tanh(x @ p["w"])
        >>> params = {"w": 0.1 * jnp.ones((3, 2))}
        >>> curvature.hessian_diag(model_fn, params, jnp.eye(3), jnp.array([0, 1, 0]))["w"].shape
        (3, 2)
    """
    check(model_fn, params, x, y, likelihood)
    return _hessian_diag(model_fn, params, x, y, likelihood)


@eqx.filter_jit
def _hessian_diag(model_fn, params, x, y, likelihood):
    leaves, treedef = jax.tree.flatten(params)
    graph = layer_graph(model_fn, params, x)
    out = []
    for leaf in range(len(leaves)):
        # With one site the layer's rows do not depend on its kernel; a kernel
        # applied twice in sequence feeds itself, so it takes the generic path.
        if len(graph.leaf_sites[leaf]) == 1:
            out.append(_factors.to_leaf(graph, leaf, _layer_hessian_diag(graph, leaves, leaf, x, y, likelihood)))
        else:
            out.append(_other_hessian_diag(model_fn, params, leaves, treedef, leaf, x, y, likelihood))
    return jax.tree.unflatten(treedef, out)


def _layer_hessian_diag(graph, leaves, leaf, x, y, likelihood):
    (number,) = graph.leaf_sites[leaf]
    site = graph.sites[number]

    def one(x_i, y_i):
        def loss(z):  # z: perturbation of the site's outputs [T, d_out]
            out, rows = graph.evaluate(leaves, x_i, {number: z})
            return sample_loss(likelihood, out, y_i), rows[number]

        z0 = jnp.zeros((site.num_rows, site.d_out), x.dtype)
        _, r = loss(z0)  # [T, d_in]
        hess = jax.hessian(lambda z: loss(z)[0])(z0)  # [T, d_out, T, d_out]
        if site.num_rows == 1:
            return r[0][:, None] ** 2 * jnp.diagonal(hess[0, :, 0, :])[None, :]
        h_jj = jnp.einsum("tjsj->jts", hess)  # per output unit j: [T, T]
        return jnp.einsum("tk,sk,jts->kj", r, r, h_jj)

    return jnp.sum(jax.vmap(one)(x, y), axis=0)


def _other_hessian_diag(model_fn, params, leaves, treedef, leaf, x, y, likelihood):
    def loss(flat):
        values = list(leaves)
        values[leaf] = flat.reshape(leaves[leaf].shape)
        return sum_loss(likelihood, model_fn(jax.tree.unflatten(treedef, values), x), y)

    flat = jnp.ravel(leaves[leaf])
    basis = jnp.eye(flat.size, dtype=flat.dtype)
    grad = jax.grad(loss)

    def hvp_diag(e):
        return jnp.dot(e, jax.jvp(grad, (flat,), (e,))[1])

    return jax.lax.map(hvp_diag, basis, batch_size=min(flat.size, 32)).reshape(leaves[leaf].shape)
