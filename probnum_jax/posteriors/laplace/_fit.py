"""``laplace.fit``: curvature at the MAP, accumulated over the data, as a posterior."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import PRNGKeyArray, PyTree

from .. import _checks
from .._factors import batch_factors, kronecker_sums, sum_of_squares, to_leaf
from .._jaxpr_layers import layer_graph
from .._likelihoods import check_likelihood, hessian_sqrt, sum_loss
from ..curvature import ggn_dense, ggn_matvec
from ._dense import FullLaplace, LowRankLaplace
from ._lanczos import lanczos_eigenpairs
from ._posterior import LaplacePosterior
from ._prior import expand_prior
from ._results import RESULTS
from ._structured import DiagLaplace, KronLaplace
from ._subset import Subset, make_subset

HESSIANS = ("full", "diag", "kfac", "lowrank")
_MAX_KFAC_BLOCK = 8192


def _batches(data):
    """``[(x, y)]`` for a pair of arrays, else an iterator over the given batches."""
    if isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "shape") and hasattr(data[1], "shape"):
        return [data]
    if hasattr(data, "shape") or not hasattr(data, "__iter__"):
        raise TypeError(
            f"data must be an (x, y) pair of arrays or an iterable of (x, y) batches, got {type(data).__name__}."
        )
    return data


def _sub_model(model_fn, params, subset):
    return lambda sub, x: model_fn(subset.embed(sub, params), x)


@eqx.filter_jit
def _batch_statistics(model_fn, params, x, y, likelihood, hessian, subset: Subset):
    """Summed loss and the curvature statistic of one batch (unit noise)."""
    leaves = jax.tree.leaves(params)
    if hessian in ("diag", "kfac"):
        graph = layer_graph(model_fn, params, x)

        def cotangents(f, y_i):
            return hessian_sqrt(likelihood, f)

        out, factors = batch_factors(graph, leaves, subset.leaves, x, cotangents, y)
        loss = sum_loss(likelihood, out, y)
        if hessian == "diag":
            diag = [to_leaf(graph, leaf, sum_of_squares(f)) for leaf, f in factors.items()]
            flat = list(leaves)
            for leaf, d in zip(subset.leaves, diag):
                flat[leaf] = d
            return loss, subset.restrict(jax.tree.unflatten(jax.tree.structure(params), flat))
        return loss, tuple(kronecker_sums(f) for f in factors.values())
    loss = sum_loss(likelihood, model_fn(params, x), y)
    if hessian == "full":
        return loss, ggn_dense(
            _sub_model(model_fn, params, subset), subset.restrict(params), x, y, likelihood=likelihood
        )
    return loss, None


def fit(
    model_fn,
    params: PyTree,
    data,
    *,
    likelihood: str = "classification",
    hessian: str = "kfac",
    subset="all",
    prior_precision=1.0,
    sigma_noise=1.0,
    rank: int | None = None,
    key: PRNGKeyArray | None = None,
    throw: bool = True,
) -> LaplacePosterior:
    """Fit a Laplace approximation at the MAP ``params`` (Daxberger et al., 2021).

    The posterior over the chosen parameters is
    ``N(params, (H / sigma_noise**2 + P0)^{-1})`` (regression) or
    ``N(params, (H + P0)^{-1})`` (classification), with ``H`` the generalised
    Gauss-Newton matrix of the summed negative log-likelihood in the chosen
    structure and ``P0`` the prior precision (MacKay, 1992).

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``; see
            :func:`probnum_jax.posteriors.from_equinox` and friends.
        params: the MAP parameters (a pytree of floating-point arrays).
        data: an ``(x, y)`` pair of arrays, or an iterable of ``(x, y)`` batches
            for data that do not fit in memory (``"lowrank"`` keeps the batches
            in a list, since Lanczos passes over the data many times).
        likelihood: ``"classification"`` (integer labels ``y[n]``, softmax
            cross-entropy) or ``"regression"`` (targets ``y[n, C]``, Gaussian).
        hessian: ``"full"`` (dense GGN), ``"diag"`` (its diagonal), ``"kfac"``
            (Kronecker factors per layer, found in the jaxpr) or ``"lowrank"``
            (leading eigenpairs of the GGN by Lanczos, plus the prior).
        subset: ``"all"``, ``"last_layer"`` (the last dense layer's kernel and
            bias) or a boolean mask pytree like ``params`` (per leaf a bool, or a
            bool array for an elementwise subnetwork; not with ``"kfac"``).
        prior_precision: scalar, one value per subset leaf, or one per subset
            parameter (not with ``"kfac"``); must be ``> 0``.
        sigma_noise: observation noise for regression (``> 0``); ignored for
            classification.
        rank: number of eigenpairs for ``"lowrank"`` (default ``min(p, 100)``).
        key: random start vector of Lanczos for ``"lowrank"`` (default: a fixed
            quasi-random vector).
        throw: raise if the fit fails (see ``post.result``) instead of returning.

    Returns:
        A :class:`~probnum_jax.posteriors.laplace.LaplacePosterior`
        (``FullLaplace``, ``DiagLaplace``, ``KronLaplace`` or ``LowRankLaplace``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import laplace
        >>> model_fn = lambda p, x: x @ p["w"] + p["b"]
        >>> params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
        >>> x = jax.random.normal(jax.random.key(0), (20, 2)); y = jnp.arange(20) % 3
        >>> post = laplace.fit(model_fn, params, (x, y), hessian="kfac", prior_precision=1.0)
        >>> laplace.predict(post, x[:2]).shape
        (2, 3)
    """
    check_likelihood(likelihood)
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}.")
    _checks.check_params(params)
    _checks.check_positive("prior_precision", prior_precision)
    _checks.check_positive("sigma_noise", sigma_noise)
    if rank is not None and (not isinstance(rank, int) or rank < 1):
        raise ValueError(f"rank must be a positive int, got {rank!r}.")
    dtype = jnp.result_type(*jax.tree.leaves(params))

    loss, count, stats, kept, subset_obj, num_outputs, spec = 0.0, 0, None, [], None, None, None
    for batch in _batches(data):
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise TypeError(f"each batch of data must be an (x, y) pair, got {type(batch).__name__}.")
        x, y = batch
        _, c = _checks.check_model_data(model_fn, params, x, y, likelihood)
        if subset_obj is None:
            subset_obj = make_subset(subset, model_fn, params, x)
            if hessian == "kfac" and not subset_obj.is_whole_leaves:
                raise ValueError("hessian='kfac' needs a subset of whole leaves, got an elementwise mask.")
            num_outputs, spec = c, (tuple(x.shape[1:]), jnp.dtype(x.dtype))
        elif (tuple(x.shape[1:]), jnp.dtype(x.dtype)) != spec:
            raise ValueError(f"all batches must have inputs of shape [n, *{spec[0]}], got {x.shape}.")
        batch_loss, batch_stats = _batch_statistics(model_fn, params, x, y, likelihood, hessian, subset_obj)
        loss, count = loss + batch_loss, count + x.shape[0]
        stats = batch_stats if stats is None else jax.tree.map(jnp.add, stats, batch_stats)
        if hessian == "lowrank":
            kept.append((x, y))
    if subset_obj is None:
        raise ValueError("data holds no batches.")

    rows = None
    if hessian == "kfac":
        graph = layer_graph(model_fn, params, jax.ShapeDtypeStruct((1,) + spec[0], spec[1]))
        rows = tuple(sum(graph.sites[s].num_rows for s in graph.leaf_sites[leaf]) or 1 for leaf in subset_obj.leaves)
    sigma = sigma_noise if likelihood == "regression" else 1.0
    post = _build_posterior(
        hessian,
        model_fn,
        params,
        subset_obj,
        likelihood,
        jnp.asarray(prior_precision, dtype),
        jnp.asarray(sigma, dtype),
        loss,
        count,
        num_outputs,
        spec,
        stats,
        rows,
        kept,
        rank,
        key,
    )
    if throw:
        post = post.result.error_if(post, post.result != RESULTS.successful)
    return post


@eqx.filter_jit
def _build_posterior(
    hessian,
    model_fn,
    params,
    subset,
    likelihood,
    prior_precision,
    sigma,
    loss,
    count,
    num_outputs,
    spec,
    stats,
    rows,
    batches,
    rank,
    key,
):
    leaves = jax.tree.leaves(params)
    dtype = jnp.result_type(*leaves)
    sub = subset.restrict(params)
    prior = expand_prior(prior_precision, tuple(jnp.shape(s) for s in sub), dtype)
    if hessian == "diag":
        curvature = {"ggn_diagonal": tuple(stats)}
    elif hessian == "full":
        curvature = {"ggn": stats}
    elif hessian == "kfac":
        curvature = _kron_curvature(stats, rows, count, sub)
    else:
        curvature = _lowrank_curvature(model_fn, params, subset, batches, likelihood, rank, key)

    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves((curvature, loss))]))
    params_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))
    positive = jnp.all(jnp.stack([jnp.all(p > 0) for p in prior])) & (sigma > 0)
    result = RESULTS.where(~finite, RESULTS.nonfinite_curvature, RESULTS.successful)
    result = RESULTS.where(~positive, RESULTS.invalid_hyperparameters, result)
    result = RESULTS.where(~params_finite, RESULTS.nonfinite_params, result)
    cls = {"diag": DiagLaplace, "full": FullLaplace, "kfac": KronLaplace, "lowrank": LowRankLaplace}[hessian]
    return cls(
        model_fn=model_fn,
        params=params,
        subset=subset,
        likelihood=likelihood,
        prior_precision=prior,
        sigma_noise=sigma,
        loss=jnp.asarray(loss, dtype),
        num_data=jnp.asarray(count, dtype),
        num_outputs=num_outputs,
        input_spec=spec,
        result=result,
        **curvature,
    )


def _kron_curvature(stats, rows_per_sample, count, sub):
    eig_a, vec_a, eig_b, vec_b, scales = [], [], [], [], []
    for (a, b), rows, s in zip(stats, rows_per_sample, sub):
        if a.shape[0] * b.shape[0] != np.prod(jnp.shape(s), dtype=int):
            raise AssertionError("Kronecker factors do not match the leaf size.")  # pragma: no cover
        if max(a.shape[0], b.shape[0]) > _MAX_KFAC_BLOCK:
            raise ValueError(
                f"hessian='kfac' would eigendecompose a {max(a.shape[0], b.shape[0])}-dimensional factor "
                "(a large parameter that is not a layer kernel); use hessian='diag' or a subset."
            )
        la, qa = jnp.linalg.eigh(a)
        lb, qb = jnp.linalg.eigh(b)
        eig_a.append(jnp.maximum(la, 0.0))
        vec_a.append(qa)
        eig_b.append(jnp.maximum(lb, 0.0))
        vec_b.append(qb)
        scales.append(jnp.asarray(1.0 / (count * rows), a.dtype))
    return dict(
        eigvals_a=tuple(eig_a),
        eigvecs_a=tuple(vec_a),
        eigvals_b=tuple(eig_b),
        eigvecs_b=tuple(vec_b),
        kron_scale=tuple(scales),
    )


def _lowrank_curvature(model_fn, params, subset, batches, likelihood, rank, key):
    sub = subset.restrict(params)
    flat, unravel = ravel_pytree(sub)
    p = flat.size
    rank = min(p, 100) if rank is None else min(rank, p)
    sub_fn = _sub_model(model_fn, params, subset)
    matvecs = [ggn_matvec(sub_fn, sub, x, y, likelihood=likelihood) for x, y in batches]

    def matvec(v):
        u = unravel(v)
        return sum(ravel_pytree(mv(u))[0] for mv in matvecs)

    if key is None:  # a fixed, quasi-random start vector (no random-number kernel to compile)
        start = jnp.cos(jnp.arange(p, dtype=flat.dtype) * 2.399963) + 0.5
    else:
        start = jax.random.normal(key, (p,), flat.dtype)
    eigvals, eigvecs = lanczos_eigenpairs(matvec, start, num_iterations=min(p, 2 * rank + 10), rank=rank)
    return dict(eigvals=eigvals, eigvecs=eigvecs)
