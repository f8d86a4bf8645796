"""Step-dependent discretisation of a linear time-invariant prior SDE, in preconditioned coordinates.

A prior ``dx = F x dt + B dW`` over ``x = (y, y', ..., y^(q))`` has the
transition ``A(h) = expm(F h)`` and the process noise
``Q(h) = ∫_0^h expm(F s) B B^T expm(F s)^T ds`` (Van Loan 1978, "Computing
integrals involving the matrix exponential"). With the IWP preconditioner
``(T, c)`` of :func:`~probnum_jax.ode._prior.iwp_preconditioner`,
``A(h) = T Ā(h) T^{-1}`` and ``Q(h) = c^2 T Q̄(h) T`` where, substituting
``s = h u``,

    Ā(h) = expm(M),   Q̄(h) = ∫_0^1 expm(M u) B̄ B̄^T expm(M u)^T du,
    M = h T^{-1} F T,  B̄ = e_q (per coordinate).

``M`` is the IWP generator ``M_0`` (``(M_0)_{i,i+1} = q - i``) plus a part
that depends on ``h`` only through dimensionless products such as
``rate * h``; for ``F`` of the IWP, ``M = M_0`` and ``(Ā, Q̄)`` do not depend on
``h``. The conditioning of ``Q̄(h)`` is therefore that of the IWP's, whatever
the step, instead of growing like ``h^{-2q}``.

The square root of ``Q̄(h)`` is computed without ever forming ``Q̄`` or taking a
Cholesky factor, so it is positive semi-definite by construction in float32:

1. halve the step ``s`` times, the fewest with ``||M(h / 2^s) - M_0||_∞ <= 1/2``;
2. there, ``Q̄`` is a Gauss–Legendre sum ``Σ_k w_k g(u_k) g(u_k)^T`` with
   ``g(u) = expm(M u) B̄`` (exact for the IWP with ``q + 1`` nodes, and to
   rounding for the small perturbation, with ``q + 5`` nodes); its square root
   is the QR factor of ``[sqrt(w_k) g(u_k)]_k``. ``g(u_k)`` and ``expm(M)``
   are Taylor polynomials of ``3q + 24`` terms (``||M|| <= q + 1/2`` there and
   ``M_0`` is nilpotent);
3. double the step ``s`` times with ``A(2h) = A(h)^2`` and
   ``Q(2h) = Q(h) + A(h) Q(h) A(h)^T``, both in square-root form (one QR each)
   and rescaled to the preconditioner of ``2h``.

This is the scaling-and-squaring idea of matrix exponentials (Higham 2005,
"The scaling and squaring method for the matrix exponential revisited")
applied to the Van Loan pair; unlike the block-matrix exponential it never
forms ``expm(-F h)``, which overflows for stiff rates.
"""

import jax
import jax.numpy as jnp
import numpy as np

# At most this many halvings: supports e.g. |rate * h| up to 2^39 (beyond, accuracy degrades).
MAX_HALVINGS = 40
_THRESHOLD = 0.5
_EXTRA_NODES = 4


def iwp_generator(num_derivatives: int) -> np.ndarray:
    """The preconditioned IWP generator ``M_0`` with ``(M_0)_{i,i+1} = q - i`` (float64 numpy)."""
    q = num_derivatives
    m = np.zeros((q + 1, q + 1))
    for i in range(q):
        m[i, i + 1] = q - i
    return m


def _triangularize(factor):
    """Lower-triangular ``L`` with ``L L^T = factor factor^T`` (``factor`` is ``[n, k]``, ``k >= n``).

    A LAPACK QR: for these small matrices it compiles in a fraction of the time of
    the unrolled Householder QR of :mod:`probnum_jax.randvars`.
    """
    n = factor.shape[0]
    return jnp.linalg.qr(factor.T, mode="reduced")[1][:n, :n].T


def _num_taylor_terms(num_derivatives: int) -> int:
    # ||M|| <= q + 1/2 at the base step; M_0 is nilpotent, so the terms decay fast.
    return 3 * num_derivatives + 24


def _expm_taylor(m, num_terms):
    """``expm(m)`` by its Taylor polynomial (Horner), for ``||m|| <= q + 1/2``."""
    eye = jnp.eye(m.shape[0], dtype=m.dtype)

    def horner(acc, k):
        return eye + (m @ acc) / k, None

    ks = jnp.arange(num_terms, 0, -1, dtype=m.dtype)
    return jax.lax.scan(horner, eye, ks)[0]


def preconditioned_discretisation(generator, h, num_derivatives: int, dim: int = 1):
    """``(Ā(h), cholesky(Q̄(h)))`` of a prior SDE from its preconditioned generator.

    Arguments:
        generator: ``h -> M(h)``, the ``[n, n]`` preconditioned generator
            ``h T^{-1} F T`` with ``n = (q + 1) * dim`` (derivative-major when
            ``dim > 1``); ``M(h) - kron(M_0, I_dim)`` must shrink at least
            linearly as ``h -> 0``.
        h: the step, a scalar.
        num_derivatives: ``q``.
        dim: the number of coordinates that share the generator (``1`` for a
            per-coordinate generator; ``d`` for a matrix rate).

    Returns:
        ``Ā(h)`` ``[n, n]`` and a lower-triangular ``L̄(h)`` with ``L̄ L̄^T = Q̄(h)``.

    Example:
        >>> import jax.numpy as jnp
        >>> m0 = jnp.asarray(iwp_generator(1))
        >>> a, l = preconditioned_discretisation(lambda h: m0, 0.1, 1)
        >>> [[round(float(x), 6) for x in row] for row in a]
        [[1.0, 1.0], [0.0, 1.0]]
        >>> [[round(float(x), 6) for x in row] for row in l @ l.T]
        [[0.333333, 0.5], [0.5, 1.0]]
    """
    q = num_derivatives
    h = jnp.asarray(h)
    dtype = h.dtype
    n = (q + 1) * dim
    eye = jnp.eye(dim, dtype=dtype)
    m0 = jnp.kron(jnp.asarray(iwp_generator(q), dtype), eye)
    noise_input = jnp.kron(jnp.zeros((q + 1, 1), dtype).at[q, 0].set(1.0), eye)  # [n, dim]

    # The fewest halvings that make the perturbation small (all candidates at once: cheap).
    candidates = jnp.arange(MAX_HALVINGS + 1)
    perturbations = jax.vmap(
        lambda k: jnp.max(jnp.sum(jnp.abs(generator(h / 2.0 ** k.astype(dtype)) - m0), axis=1))
    )(jax.lax.stop_gradient(candidates))
    small = jax.lax.stop_gradient(perturbations <= _THRESHOLD)
    halvings = jnp.where(jnp.any(small), jnp.argmax(small), MAX_HALVINGS)
    m = generator(h / 2.0 ** halvings.astype(dtype))

    # Base step: Gauss-Legendre square root of the (nearly polynomial) integrand, with
    # expm(M u) B = sum_k u^k M^k B / k! for all nodes from one sequence of products.
    nodes, weights = np.polynomial.legendre.leggauss(q + 1 + _EXTRA_NODES)
    nodes = (nodes + 1) / 2
    num_terms = _num_taylor_terms(q)
    vandermonde = jnp.asarray(
        np.sqrt(weights / 2)[:, None] * nodes[:, None] ** np.arange(num_terms)[None, :], dtype
    )  # [K, num_terms]

    def taylor_term(term, k):
        return (m @ term) / (k + 1), term

    _, terms = jax.lax.scan(taylor_term, noise_input, jnp.arange(num_terms, dtype=dtype))
    columns = jnp.einsum("jk,kna->nja", vandermonde, terms)  # [n, K, dim]
    chol = _triangularize(columns.reshape(n, -1))
    transition = _expm_taylor(m, num_terms)

    # Doubling, rescaled to the preconditioner of the doubled step:
    # Ā(2h) = D^{-1} Ā(h)^2 D and L̄(2h) = D^{-1} [L̄, Ā L̄] / 2^((q+1)/2), D = diag(2^(q/2 - i)).
    d = jnp.repeat(jnp.asarray(2.0 ** (q / 2 - np.arange(q + 1)), dtype), dim)
    noise_factor = jnp.asarray(2.0 ** (-(q + 1) / 2), dtype)

    def double(a, lc):
        a2 = (a @ a) * d[None, :] / d[:, None]
        l2 = _triangularize(jnp.concatenate([lc, a @ lc], axis=1)) * (noise_factor / d[:, None])
        return a2, l2

    # A static trip count with a `cond` inside: differentiable in both modes, and only the
    # needed doublings run (under vmap, `cond` turns into `select` and all of them run).
    def body(k, carry):
        return jax.lax.cond(k < halvings, double, lambda a, lc: (a, lc), *carry)

    transition, chol = jax.lax.fori_loop(0, MAX_HALVINGS, body, (transition, chol))
    return transition, chol
