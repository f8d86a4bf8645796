"""The solution object and the backward Markov chain behind smoothing posteriors."""

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .. import randvars
from ._factorisations import Factorisation
from ._results import RESULTS


def tree_at_index(tree, index):
    return jax.tree.map(lambda x: x[index], tree)


def tree_set_index(tree, index, value):
    return jax.tree.map(lambda x, v: x.at[index].set(v), tree, value)


class BackwardChain(eqx.Module):
    """A Gauss–Markov chain stored backwards: ``p(x_N) Π_j p(x_j | x_{j+1})``.

    ``conditionals[j] = p(x_j | x_{j+1})`` for ``j < length``; ``terminal = p(x_length)``.
    Buffers may be longer than ``length`` (adaptive steps); entries past it are unused.
    This is the smoothing posterior of a filter (Särkkä 2013, ch. 8).
    """

    terminal: randvars.Normal
    conditionals: randvars.Conditional
    length: Int[Array, ""]

    def marginals(self) -> randvars.Normal:
        """All marginals, stacked along a leading axis of size ``buffer + 1``.

        The chain's length may be known only at run time (the accepted steps of
        an adaptive solve), so the backward pass is a bounded, checkpointed
        while loop: reverse-mode differentiable, unlike a ``fori_loop`` with a
        traced length.
        """
        size = jax.tree.leaves(self.conditionals)[0].shape[0]
        init = jax.tree.map(lambda x: jnp.zeros((size + 1,) + x.shape, x.dtype), self.terminal)
        init = tree_set_index(init, self.length, self.terminal)

        def body(carry):
            i, nxt, margs = carry
            j = self.length - 1 - i
            prev = randvars.marginalise(nxt, tree_at_index(self.conditionals, j))
            margs = jax.tree.map(lambda v, b: eqxi.buffer_at_set(b, j, v), prev, margs)
            return i + 1, prev, margs

        carry = (jnp.zeros((), jnp.int32), self.terminal, init)
        _, _, margs = eqxi.while_loop(
            lambda c: c[0] < self.length,
            body,
            carry,
            max_steps=size,
            buffers=lambda c: c[2],
            kind="checkpointed",
        )
        return margs

    def sample(self, key: PRNGKeyArray) -> Array:
        """One joint sample of all states, stacked ``[buffer + 1, ...]``."""
        size = jax.tree.leaves(self.conditionals)[0].shape[0]
        key_terminal, key_chain = jax.random.split(key)
        eps = jax.random.normal(key_chain, (size,) + self.terminal.mean.shape, self.terminal.mean.dtype)
        last = self.terminal.sample(key_terminal)
        draws = jnp.zeros((size + 1,) + last.shape, last.dtype).at[self.length].set(last)

        def body(i, draws):
            j = self.length - 1 - i
            cond = tree_at_index(self.conditionals, j)
            return draws.at[j].set(cond(draws[j + 1]).transform_standard(eps[j]))

        return jax.lax.fori_loop(0, self.length, body, draws)

    def scale(self, factor) -> "BackwardChain":
        return BackwardChain(self.terminal.scale(factor), self.conditionals.scale(factor), self.length)


class Solution(eqx.Module):
    """The output of :func:`~probnum_jax.ode.solve` and :func:`~probnum_jax.ode.solve_fixed_grid`.

    Attributes:
        t: the save points ``[T]``.
        mean: posterior mean of ``y`` at ``t``, ``[T, d]``.
        std: posterior standard deviation of ``y`` at ``t``, ``[T, d]``.
        marginals: the Gaussian over all ``q+1`` derivatives at ``t`` (stacked).
        num_steps: accepted steps. num_rejected: rejected steps.
        num_f_evals: evaluations of the vector field (each Jacobian-vector
            product of EK1 and each Taylor-mode pass count as one).
        result: a :class:`RESULTS` item; ``RESULTS.successful`` when ``t1`` was reached.
        output_scale: the calibrated output scale (global MLE for
            ``calibration="mle"``, root-mean-square of the local estimates for
            ``"dynamic"``, the fixed value for ``"none"``).
        log_marginal_likelihood: the filter's prediction-error decomposition of
            the log-likelihood of ``y' = f(y)`` at the steps (at the fixed output
            scale used; informative for calibration).
        posterior: the backward Markov chain of a smoother, used by :meth:`sample`.
        save_index: positions of ``t`` in ``posterior``.
        num_iterations: Gauss–Newton iterations of the parallel-in-time
            smoother (``solve_fixed_grid(..., parallel=True)``); ``None`` otherwise.
    """

    t: Float[Array, " T"]
    mean: Float[Array, "T d"]
    std: Float[Array, "T d"]
    marginals: randvars.Normal
    num_steps: Int[Array, ""]
    num_rejected: Int[Array, ""]
    num_f_evals: Int[Array, ""]
    result: RESULTS
    output_scale: Array
    log_marginal_likelihood: Array
    posterior: BackwardChain | None
    save_index: Array | None
    factorisation: Factorisation
    num_iterations: Int[Array, ""] | None = None

    def sample(self, key: PRNGKeyArray, num_samples: int) -> Float[Array, "n T d"]:
        """Joint samples of ``y`` at ``t`` from the smoothing posterior, ``[num_samples, T, d]``.

        Requires ``strategy="smoother"`` or ``"fixedpoint"``: a filter has no
        joint posterior over time.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> import probnum_jax as pnx
            >>> solver = pnx.ode.EK0(num_derivatives=2, strategy="fixedpoint")
            >>> sol = pnx.ode.solve(lambda t, y, a: -y, jnp.ones(1), t0=0.0, t1=1.0,
            ...                     solver=solver, save_at=jnp.linspace(0.0, 1.0, 5))
            >>> sol.sample(jax.random.PRNGKey(0), 3).shape
            (3, 5, 1)
        """
        if self.posterior is None:
            raise ValueError(
                "sample() needs a joint posterior: solve with strategy='smoother' or "
                "'fixedpoint' (a filter has only marginals)."
            )
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")
        return _sample_solution(self.posterior, self.save_index, self.factorisation, key, num_samples)


@eqx.filter_jit
def _sample_solution(posterior, save_index, factorisation, key, num_samples):
    keys = jax.random.split(key, num_samples)
    states = jax.vmap(posterior.sample)(keys)[:, save_index]
    return jax.vmap(jax.vmap(lambda m: factorisation.derivative(m, 0)))(states)
