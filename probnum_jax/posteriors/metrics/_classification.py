"""Classification metrics: accuracy, NLL, calibration (ECE, MCE), Brier score, OOD AUROC."""

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def _check(probs, y):
    if not hasattr(probs, "ndim") or probs.ndim != 2:
        raise ValueError(f"probs must be an [n, C] array of class probabilities, got shape {jnp.shape(probs)}.")
    if not hasattr(y, "shape") or y.shape != probs.shape[:1]:
        raise ValueError(f"y must be an [n] = [{probs.shape[0]}] array of labels, got shape {jnp.shape(y)}.")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(f"y must hold integer labels, got dtype {y.dtype}.")


@jax.jit
def accuracy(probs: Float[Array, "n C"], y: Int[Array, " n"]) -> Float[Array, ""]:
    """Fraction of inputs whose most probable class is the label.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> float(metrics.accuracy(jnp.array([[0.9, 0.1], [0.2, 0.8]]), jnp.array([0, 0])))
        0.5
    """
    _check(probs, y)
    return jnp.mean(jnp.argmax(probs, axis=1) == y).astype(probs.dtype)


@jax.jit
def nll(probs: Float[Array, "n C"], y: Int[Array, " n"]) -> Float[Array, ""]:
    """Mean negative log-probability of the labels (probabilities clipped at the dtype's tiny).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> round(float(metrics.nll(jnp.array([[0.5, 0.5]]), jnp.array([1]))), 4)  # log 2
        0.6931
    """
    _check(probs, y)
    p = jnp.take_along_axis(probs, y[:, None], axis=1)[:, 0]
    return -jnp.mean(jnp.log(jnp.maximum(p, jnp.finfo(probs.dtype).tiny)))


@jax.jit
def brier(probs: Float[Array, "n C"], y: Int[Array, " n"]) -> Float[Array, ""]:
    """Multi-class Brier score ``mean_i sum_k (p_ik - [y_i = k])**2`` (Brier, 1950).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> float(metrics.brier(jnp.array([[1.0, 0.0]]), jnp.array([1])))
        2.0
    """
    _check(probs, y)
    onehot = jax.nn.one_hot(y, probs.shape[1], dtype=probs.dtype)
    return jnp.mean(jnp.sum((probs - onehot) ** 2, axis=1))


@functools.partial(jax.jit, static_argnames="num_bins")
def reliability_diagram(
    probs: Float[Array, "n C"], y: Int[Array, " n"], *, num_bins: int = 15
) -> tuple[Float[Array, " B"], Float[Array, " B"], Float[Array, " B"]]:
    """Per confidence bin: mean confidence, accuracy and count.

    The confidence of an input is its largest class probability; bin ``b``
    holds confidences in ``((b - 1) / B, b / B]`` (the first bin includes 0).
    Empty bins have count 0 and confidence and accuracy 0.

    Returns:
        ``(confidence[B], accuracy[B], count[B])``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> conf, acc, count = metrics.reliability_diagram(jnp.array([[0.9, 0.1]]), jnp.array([0]), num_bins=2)
        >>> count.tolist()
        [0.0, 1.0]
    """
    _check(probs, y)
    if not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive int, got {num_bins!r}.")
    confidence = jnp.max(probs, axis=1)
    correct = (jnp.argmax(probs, axis=1) == y).astype(probs.dtype)
    bins = jnp.clip(jnp.ceil(confidence * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
    count = jnp.zeros(num_bins, probs.dtype).at[bins].add(1.0)
    conf_sum = jnp.zeros(num_bins, probs.dtype).at[bins].add(confidence)
    acc_sum = jnp.zeros(num_bins, probs.dtype).at[bins].add(correct)
    safe = jnp.maximum(count, 1.0)
    return conf_sum / safe, acc_sum / safe, count


@functools.partial(jax.jit, static_argnames="num_bins")
def ece(probs: Float[Array, "n C"], y: Int[Array, " n"], *, num_bins: int = 15) -> Float[Array, ""]:
    """Expected calibration error ``sum_b (n_b / n) |acc_b - conf_b|`` (Naeini et al., 2015).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> round(float(metrics.ece(jnp.array([[0.9, 0.1], [0.9, 0.1]]), jnp.array([0, 1]))), 4)
        0.4
    """
    conf, acc, count = reliability_diagram(probs, y, num_bins=num_bins)
    return jnp.sum(count * jnp.abs(acc - conf)) / probs.shape[0]


@functools.partial(jax.jit, static_argnames="num_bins")
def mce(probs: Float[Array, "n C"], y: Int[Array, " n"], *, num_bins: int = 15) -> Float[Array, ""]:
    """Maximum calibration error ``max_b |acc_b - conf_b|`` over non-empty bins.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> round(float(metrics.mce(jnp.array([[0.9, 0.1], [0.6, 0.4]]), jnp.array([0, 1]))), 4)
        0.6
    """
    conf, acc, count = reliability_diagram(probs, y, num_bins=num_bins)
    return jnp.max(jnp.where(count > 0, jnp.abs(acc - conf), 0.0))


@jax.jit
def ood_auroc(probs_in: Float[Array, "n C"], probs_out: Float[Array, "m C"]) -> Float[Array, ""]:
    """AUROC of telling in- from out-of-distribution inputs by the maximum probability.

    In-distribution inputs are the positives and the score is the largest
    class probability (Hendrycks & Gimpel, 2017). Computed as the
    Mann-Whitney statistic with ties counted as one half.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import metrics
        >>> float(metrics.ood_auroc(jnp.array([[0.9, 0.1]]), jnp.array([[0.5, 0.5]])))
        1.0
    """
    for name, p in (("probs_in", probs_in), ("probs_out", probs_out)):
        if not hasattr(p, "ndim") or p.ndim != 2:
            raise ValueError(f"{name} must be an [n, C] array of class probabilities, got shape {jnp.shape(p)}.")
    if probs_in.shape[1] != probs_out.shape[1]:
        raise ValueError(
            f"probs_in and probs_out must have the same number of classes, got {probs_in.shape[1]} "
            f"and {probs_out.shape[1]}."
        )
    s_in, s_out = jnp.max(probs_in, axis=1), jnp.max(probs_out, axis=1)
    scores = jnp.sort(jnp.concatenate([s_in, s_out]))
    low = jnp.searchsorted(scores, s_in, side="left")
    high = jnp.searchsorted(scores, s_in, side="right")
    ranks = 0.5 * (low + high + 1)  # 1-based average ranks with ties
    n, m = s_in.shape[0], s_out.shape[0]
    return ((jnp.sum(ranks) - n * (n + 1) / 2) / (n * m)).astype(probs_in.dtype)
