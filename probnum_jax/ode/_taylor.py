"""Initial derivatives of an ODE solution by Taylor-mode automatic differentiation."""

import jax
import jax.numpy as jnp
from jax.experimental import jet


def taylor_coefficients(vector_field, t0, y0, args, num_derivatives: int, *, method="auto"):
    """Derivatives ``(y(t0), y'(t0), ..., y^(q)(t0))`` of the solution through ``y0``, shape ``[q+1, d]``.

    ``method="jet"`` propagates truncated Taylor series through the vector field
    with ``jax.experimental.jet``: ``q - 1`` passes, each one order higher
    (Griewank & Walther 2008, *Evaluating Derivatives*, ch. 13; Krämer & Hennig
    2024, "Stable implementation of probabilistic ODE solvers", Sec. 3).
    ``method="jvp"`` nests forward-mode derivatives of the total derivative along
    the flow; it works for every JAX-differentiable vector field but costs
    ``O(2^q)``. ``"auto"`` uses ``"jet"`` and falls back to ``"jvp"`` if ``jet``
    cannot trace the vector field (e.g. a primitive without a jet rule).

    Example:
        >>> import jax.numpy as jnp
        >>> coeffs = taylor_coefficients(lambda t, y, a: y, 0.0, jnp.ones(1), None, 3)
        >>> coeffs[:, 0].tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    if method not in ("auto", "jet", "jvp"):
        raise ValueError(f"method must be 'auto', 'jet' or 'jvp', got {method!r}.")
    t0 = jnp.asarray(t0, dtype=y0.dtype)

    def f(t, y):
        return vector_field(t, y, args)

    if method == "auto":
        method = _resolve_method(f, t0, y0, num_derivatives)
    if method == "jvp":
        return _taylor_jvp(f, t0, y0, num_derivatives)
    return _taylor_jet(f, t0, y0, num_derivatives)


def _resolve_method(f, t0, y0, num_derivatives):
    """``"jet"`` if jet can trace ``f``, else ``"jvp"``.

    The trial runs under ``eval_shape``, so a failed attempt leaves nothing
    behind in the caller's trace (no stray calls of ``f`` with side effects).
    """
    try:
        jax.eval_shape(lambda t, y: _taylor_jet(f, t, y, num_derivatives), t0, y0)
    except Exception:  # noqa: BLE001 - any tracing failure of jet triggers the fallback
        return "jvp"
    return "jet"


def num_taylor_f_evals(vector_field, t0, y0, args, num_derivatives: int) -> int:
    """Vector-field calls of ``taylor_coefficients(..., method="auto")``.

    ``q`` with jet (one plain call, then one jet pass per order); with the
    nested-JVP fallback the ``k``-th derivative calls ``f`` ``k`` times, so
    ``q (q + 1) / 2`` in all.
    """
    t0 = jnp.asarray(t0, dtype=y0.dtype)
    method = _resolve_method(lambda t, y: vector_field(t, y, args), t0, y0, num_derivatives)
    q = num_derivatives
    return q if method == "jet" else q * (q + 1) // 2


def _taylor_jet(f, t0, y0, num_derivatives):
    derivs = [y0, f(t0, y0)]
    one, zero = jnp.ones_like(t0), jnp.zeros_like(t0)
    for k in range(1, num_derivatives):
        t_series = [one] + [zero] * (k - 1)
        _, out = jet.jet(f, (t0, y0), (t_series, derivs[1 : k + 1]))
        derivs.append(out[k - 1])
    return jnp.stack(derivs[: num_derivatives + 1])


def _taylor_jvp(f, t0, y0, num_derivatives):
    derivs = [y0, f(t0, y0)]
    total = f
    for _ in range(1, num_derivatives):

        def total(t, y, prev=total):
            return jax.jvp(prev, (t, y), (jnp.ones_like(t), f(t, y)))[1]

        derivs.append(total(t0, y0))
    return jnp.stack(derivs[: num_derivatives + 1])
