"""Drawing weights from, and reading the posterior of, a natural-gradient optimizer state.

IVON and VOGN need gradients at weights sampled from their current Gaussian
``N(m, diag(1 / (ess * (h + delta))))``. :func:`sample_params` draws them
from the optimizer state (found inside ``optax.chain`` states too) and records
the draw for the next update; :func:`posterior` returns the Gaussian.
"""

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray, PyTree

from .._checks import check_params
from ._ivon import IVONState
from ._posterior import MeanFieldGaussian, tree_normal_like
from ._vogn import VOGNState

_STATES = (IVONState, VOGNState)


def _is_state(node) -> bool:
    return isinstance(node, _STATES)


def _find_state(opt_state):
    found = [node for node in jax.tree.leaves(opt_state, is_leaf=_is_state) if _is_state(node)]
    if len(found) != 1:
        raise ValueError(
            "opt_state must contain exactly one IVONState or VOGNState (the state of vi.ivon or vi.vogn, "
            f"possibly inside optax.chain), found {len(found)}."
        )
    return found[0]


def _std(state, params):
    if jax.tree.structure(state.hess) != jax.tree.structure(params):
        raise ValueError(
            "params must have the structure of the parameters the optimizer was initialised with, got "
            f"{jax.tree.structure(params)} and {jax.tree.structure(state.hess)}."
        )
    return jax.tree.map(lambda h: jax.lax.rsqrt(state.ess * (h + state.delta)), state.hess)


def posterior(opt_state, params: PyTree) -> MeanFieldGaussian:
    """The mean-field Gaussian of an IVON or VOGN state, ``N(params, diag(1 / (ess * (h + delta))))``.

    Args:
        opt_state: the state of :func:`ivon` or :func:`vogn`, or a chain containing one.
        params: the current mean (the optimizer's parameters).

    Returns:
        A :class:`MeanFieldGaussian` with ``mean = params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import vi
        >>> opt = vi.ivon(0.1, ess=4.0, hess_init=1.0, weight_decay=0.0)
        >>> params = {"w": jnp.zeros(2)}
        >>> vi.posterior(opt.init(params), params).std["w"].tolist()
        [0.5, 0.5]
    """
    check_params(params)
    state = _find_state(opt_state)
    return MeanFieldGaussian(params, _std(state, params))


def sample_params(opt_state, params: PyTree, key: PRNGKeyArray) -> tuple[PyTree, object]:
    """Draw ``theta ~ N(params, diag(1 / (ess * (h + delta))))`` from an IVON or VOGN state.

    Evaluate the loss gradient at ``theta`` and pass it to the optimizer's
    ``update`` with the returned state, which records ``theta - params`` (IVON's
    reparameterisation Hessian estimate needs it).

    Args:
        opt_state: the state of :func:`ivon` or :func:`vogn`, or a chain containing one.
        params: the current mean.
        key: a JAX random key.

    Returns:
        ``(theta, opt_state)``: a pytree like ``params`` and the state with the draw recorded.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import vi
        >>> opt = vi.ivon(0.1, ess=100.0)
        >>> params = {"w": jnp.zeros(3)}
        >>> theta, state = vi.sample_params(opt.init(params), params, jax.random.key(0))
        >>> theta["w"].shape
        (3,)
    """
    check_params(params)
    state = _find_state(opt_state)
    std = _std(state, params)
    noise = jax.tree.map(lambda s, e: s * e, std, tree_normal_like(key, params))
    theta = jax.tree.map(lambda p, e: p + e.astype(jnp.result_type(p)), params, noise)
    new_state = state._replace(noise=noise)
    opt_state = jax.tree.map(lambda node: new_state if _is_state(node) else node, opt_state, is_leaf=_is_state)
    return theta, opt_state
