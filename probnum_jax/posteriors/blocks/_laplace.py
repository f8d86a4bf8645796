"""Block-coordinate Laplace: a joint mode by block Gauss-Newton, block-diagonal covariance.

The regularised loss is

    L(w) = s * sum_n loss(f(x_n; w), y_n) + (delta / 2) ||w||^2,

``s = 1 / sigma_noise**2`` for regression (1 for classification). The
sweeps cycle over the parameter leaves ("layers"); for leaf ``b``, with the
others held fixed, a damped Gauss-Newton (Levenberg-Marquardt) step on
``L_b(w_b) = L(w_b, w_{-b})`` is

    w_b <- w_b - (G_b + (delta + lambda_b) I)^{-1} (g_b + delta w_b),

with ``g_b`` the gradient of the summed loss and ``G_b`` its exact GGN
block, block-diagonal over units (:func:`block_ggn`). A step is kept if it
does not increase ``L``; ``lambda_b`` shrinks after a kept step and grows
after a rejected one (Levenberg, 1944; Marquardt, 1963). Block-coordinate
descent with exact block minimisation converges to a stationary point of
``L`` (Tseng, 2001; Wright, 2015), i.e. to the joint MAP ``w*``, not just
to a per-block one.

The sweeps stop when every block's Newton decrement
``|| L_b^{-1} (g_b + delta w_b) ||`` (the distance to the block's
conditional mode in units of its posterior standard deviation, with
``G_b + delta I = L_b L_b^T``) is below ``tol``. The posterior is

    q(w) = N(w*, blockdiag_b (s G_b(w*) + delta I)^{-1}),

for each block the Laplace approximation of its *conditional* posterior
``p(w_b | w*_{-b}, data)`` at the joint mode. With ``block="layer"`` this is
the block-diagonal Laplace of Ritter et al. (2018) without the Kronecker
factorisation (Martens & Grosse, 2015); ``block="unit"`` keeps one dense
block per output unit. See Daxberger et al. (2021) for Laplace
approximations of networks in general.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from ... import _small_linalg as small
from .. import _checks
from .._jaxpr_layers import layer_graph
from .._likelihoods import check_likelihood, sample_loss
from ..vi._posterior import check_positive_scalar
from ._ggn import (
    blocks_to_leaf,
    check_block,
    check_count,
    curvature_pass,
    leaf_to_blocks,
)
from ._posterior import RESULTS, BlockGaussian


def laplace(
    model_fn,
    params: PyTree,
    x: Float[Array, "n ..."],
    y: Array,
    *,
    likelihood: str = "classification",
    prior_precision: float = 1.0,
    block: str = "unit",
    sigma_noise: float = 1.0,
    num_sweeps: int = 500,
    num_steps: int = 1,
    damping: float = 0.0,
    tol: float | None = None,
) -> BlockGaussian:
    """Block-coordinate Laplace: block Gauss-Newton to the joint MAP, then per-block Laplace.

    Cycles over the parameter leaves; for each, holding the others fixed,
    takes ``num_steps`` damped Gauss-Newton steps on the regularised loss with
    the exact GGN block (block-diagonal over units for ``block="unit"``),
    until every block's Newton decrement is below ``tol`` or ``num_sweeps``
    sweeps are done (a ``lax.while_loop``; jit-able). The posterior is
    ``N(w*, blockdiag_b (s G_b(w*) + delta I)^{-1})``, each block's
    conditional Laplace approximation at the joint mode (see the module
    docstring for the derivation; Ritter et al., 2018; Daxberger et al.,
    2021; Martens & Grosse, 2015; Tseng, 2001).

    Each step costs one forward and ``C + 1`` backward passes over the data
    and a Cholesky factorisation per block: ``O(d_out d_in^3)`` for a kernel
    with ``block="unit"``, ``O((d_in d_out)^3)`` (and quadratic memory)
    with ``block="layer"``, which is meant for small layers.

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: initial parameters (e.g. a trained network).
        x: inputs ``[n, ...]``.
        y: integer labels ``[n]`` (classification) or targets ``[n, C]`` (regression).
        likelihood: ``"classification"`` or ``"regression"``.
        prior_precision: ``delta > 0`` of the isotropic prior ``N(0, I / delta)``.
        block: ``"unit"`` (a dense block per output unit) or ``"layer"`` (per leaf).
        sigma_noise: observation-noise standard deviation (regression).
        num_sweeps: maximum number of sweeps over the leaves (>= 1).
        num_steps: Gauss-Newton steps per leaf and sweep (>= 1).
        damping: minimum Levenberg-Marquardt damping ``lambda >= 0`` (0: plain
            Gauss-Newton while the steps decrease the loss).
        tol: tolerance on the Newton decrements, in posterior standard deviations;
            ``None``: ``sqrt(eps)`` of the parameters' dtype (1.5e-8 in float64,
            3.5e-4 in float32).

    Returns:
        A :class:`BlockGaussian`; ``result`` is ``RESULTS.max_sweeps_reached`` if
        the tolerance was not met.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import blocks
        >>> model_fn = lambda p, x: jnp.tanh(x @ p["w1"]) @ p["w2"]
        >>> k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
        >>> params = {"w1": jax.random.normal(k1, (2, 3)), "w2": jax.random.normal(k2, (3, 2))}
        >>> x = jax.random.normal(k3, (20, 2)); y = (x[:, 0] > 0).astype(int)
        >>> post = blocks.laplace(model_fn, params, x, y, prior_precision=1.0)
        >>> bool(post.converged), [c.shape for c in post.precision_chol]
        (True, [(3, 2, 2), (2, 3, 3)])
    """
    check_arguments(model_fn, params, x, y, likelihood, block, prior_precision, sigma_noise, num_sweeps, num_steps)
    for name, value in (("damping", damping), ("tol", 0.0 if tol is None else tol)):
        if _checks.is_concrete(value) and not float(value) >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}.")
    return _laplace(
        model_fn, params, x, y, likelihood, block, prior_precision, sigma_noise, num_sweeps, num_steps, damping, tol
    )


def check_arguments(model_fn, params, x, y, likelihood, block, prior_precision, sigma_noise, num_sweeps, num_steps):
    """Trace-time checks shared by :func:`laplace` and :func:`vi`."""
    check_likelihood(likelihood)
    check_block(block)
    _checks.check_params(params)
    _checks.check_model_data(model_fn, params, x, y, likelihood)
    check_positive_scalar("prior_precision", prior_precision)
    check_positive_scalar("sigma_noise", sigma_noise)
    check_count("num_sweeps", num_sweeps)
    check_count("num_steps", num_steps)


def loss_scale(likelihood, sigma_noise, dtype):
    if likelihood == "regression":
        return (1.0 / jnp.asarray(sigma_noise, dtype) ** 2).astype(dtype)
    return jnp.ones((), dtype)


def final_precision_chol(graph, leaves, x, y, likelihood, block, scale, delta):
    """Cholesky factors of ``scale * G_b + delta I`` for every leaf at ``leaves``."""
    curv = curvature_pass(graph, leaves, range(len(leaves)), x, y, likelihood, block, with_gradient=False)
    return tuple(regularised_chol(scale * curv[leaf][0], delta) for leaf in range(len(leaves)))


def regularised_chol(ggn, shift):
    eye = jnp.eye(ggn.shape[-1], dtype=ggn.dtype)
    return jax.vmap(small.cholesky)(ggn + shift * eye)  # loops, not LAPACK: see probnum_jax/_small_linalg.py


def cho_solve_blocks(chol, rhs):
    """``(L L^T)^{-1} rhs`` for ``chol[B, m, m]``, ``rhs[B, m]``; also returns ``L^{-1} rhs``."""
    z = jax.vmap(small.solve_lower)(chol, rhs)
    return jax.vmap(small.solve_lower_transpose)(chol, z), z


@eqx.filter_jit
def _laplace(model_fn, params, x, y, likelihood, block, prior_precision, sigma_noise, num_sweeps, num_steps, damping,
             tol):  # fmt: skip
    leaves, treedef = jax.tree.flatten(params)
    dtype = jnp.result_type(*leaves)
    graph = layer_graph(model_fn, params, x)
    delta = jnp.asarray(prior_precision, dtype)
    scale = loss_scale(likelihood, sigma_noise, dtype)
    lam_min = jnp.asarray(damping, dtype)
    tol = jnp.sqrt(jnp.finfo(dtype).eps) if tol is None else jnp.asarray(tol, dtype)
    num_leaves = len(leaves)

    def sample_losses(values):
        out = model_fn(jax.tree.unflatten(treedef, values), x)
        return (scale * jax.vmap(lambda f, y_i: sample_loss(likelihood, f, y_i))(out, y)).astype(dtype)

    def losses_and_gradient(values, leaf):
        def total(value):
            losses = sample_losses(values[:leaf] + [value] + values[leaf + 1 :])
            return jnp.sum(losses), losses

        (_, losses), grad = jax.value_and_grad(total, has_aux=True)(values[leaf])
        return losses, grad

    def block_step(values, losses, lam, leaf):
        ggn, grad = curvature_pass(graph, values, (leaf,), x, y, likelihood, block)[leaf]
        w = leaf_to_blocks(graph, leaf, values[leaf], block)
        residual = scale * grad + delta * w
        chol = regularised_chol(scale * ggn, delta)
        _, z = cho_solve_blocks(chol, residual)
        decrement = jnp.sqrt(jnp.sum(z**2)).astype(dtype)
        step, _ = cho_solve_blocks(regularised_chol(scale * ggn, delta + lam), residual)
        proposal = list(values)
        proposal[leaf] = blocks_to_leaf(graph, leaf, w - step, block).astype(values[leaf].dtype)
        new_losses, new_grad = losses_and_gradient(proposal, leaf)
        new_w = leaf_to_blocks(graph, leaf, proposal[leaf], block)
        _, new_z = cho_solve_blocks(chol, leaf_to_blocks(graph, leaf, new_grad, block) + delta * new_w)
        new_decrement = jnp.sqrt(jnp.sum(new_z**2))
        # The change of the objective from per-sample differences, and its rounding error.
        change = jnp.sum(new_losses - losses) + 0.5 * delta * jnp.sum((new_w - w) * (new_w + w))
        noise = 8 * jnp.finfo(dtype).eps * (jnp.sum(jnp.abs(losses)) + delta * jnp.sum(w**2))
        # Keep a clear decrease; within rounding, keep the step if it moves towards stationarity.
        accept = (change <= -noise) | ((change <= noise) & (new_decrement <= decrement))
        accept = accept & jnp.isfinite(change) & jnp.isfinite(new_decrement)
        values = [jnp.where(accept, p, v) for p, v in zip(proposal, values)]
        losses = jnp.where(accept, new_losses, losses)
        # Levenberg-Marquardt: halve the damping after a kept step (down to `damping`), else x4.
        halved = jnp.where(lam / 2 < 1e-3 * delta, lam_min, jnp.maximum(lam / 2, lam_min))
        lam = jnp.where(accept, halved, jnp.maximum(4 * lam, delta)).astype(dtype)
        return values, losses, lam, decrement

    def sweep(state):
        values, losses, lams, count, _ = state
        values, lams = list(values), list(lams)
        worst = jnp.zeros((), dtype)
        for leaf in range(num_leaves):
            for step in range(num_steps):
                values, losses, lams[leaf], decrement = block_step(values, losses, lams[leaf], leaf)
                if step == 0:
                    worst = jnp.maximum(worst, jnp.where(jnp.isfinite(decrement), decrement, jnp.inf))
        return tuple(values), losses, tuple(lams), count + 1, worst

    def cond(state):
        _, losses, _, count, worst = state
        return (count < num_sweeps) & (worst > tol) & jnp.all(jnp.isfinite(losses))

    lams = tuple(lam_min for _ in leaves)
    init = (tuple(leaves), sample_losses(leaves), lams, jnp.asarray(0), jnp.asarray(jnp.inf, dtype))
    values, losses, _, count, worst = jax.lax.while_loop(cond, sweep, init)
    values = list(values)
    chols = final_precision_chol(graph, values, x, y, likelihood, block, scale, delta)
    finite = jnp.all(jnp.isfinite(losses)) & jnp.all(jnp.array([jnp.all(jnp.isfinite(c)) for c in chols]))
    result = RESULTS.where(
        finite, RESULTS.where(worst <= tol, RESULTS.successful, RESULTS.max_sweeps_reached), RESULTS.nonfinite
    )
    return BlockGaussian(
        model_fn,
        jax.tree.unflatten(treedef, values),
        chols,
        likelihood,
        block,
        jnp.asarray(sigma_noise, dtype),
        delta,
        count,
        result,
        (tuple(x.shape[1:]), x.dtype),
    )
