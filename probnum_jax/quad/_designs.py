"""Space-filling initial designs in JAX: scrambled Sobol points and Latin hypercubes.

Sobol points use the direction numbers of Joe & Kuo ("Constructing Sobol
sequences with better two-dimensional projections", SIAM J. Sci. Comput. 30,
2008; table new-joe-kuo-6.21201, first 32 dimensions) and are randomised by a
linear matrix scramble plus a digital shift (Matoušek, "On the L2-discrepancy
for anchored boxes", J. Complexity 14, 1998), which keeps the (t, m, s)-net
property and makes the design an unbiased, key-dependent random variable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

_BITS = 32
# (primitive polynomial incl. leading and trailing 1 bits, initial direction numbers m_1..m_s)
_JOE_KUO = (
    (1, (1,)), (3, (1,)), (7, (1, 3)), (11, (1, 3, 1)), (13, (1, 1, 1)), (19, (1, 1, 3, 3)),
    (25, (1, 3, 5, 13)), (37, (1, 1, 5, 5, 17)), (41, (1, 1, 5, 5, 5)), (47, (1, 1, 7, 11, 19)),
    (55, (1, 1, 5, 1, 1)), (59, (1, 1, 1, 3, 11)), (61, (1, 3, 5, 5, 31)),
    (67, (1, 3, 3, 9, 7, 49)), (91, (1, 1, 1, 15, 21, 21)), (97, (1, 3, 1, 13, 27, 49)),
    (103, (1, 1, 1, 15, 7, 5)), (109, (1, 3, 1, 15, 13, 25)), (115, (1, 1, 5, 5, 19, 61)),
    (131, (1, 3, 7, 11, 23, 15, 103)), (137, (1, 3, 7, 13, 13, 15, 69)),
    (143, (1, 1, 3, 13, 7, 35, 63)), (145, (1, 3, 5, 9, 1, 25, 53)),
    (157, (1, 3, 1, 13, 9, 35, 107)), (167, (1, 3, 1, 5, 27, 61, 31)),
    (171, (1, 1, 5, 11, 19, 41, 61)), (185, (1, 3, 5, 3, 3, 13, 69)),
    (191, (1, 1, 7, 13, 1, 19, 1)), (193, (1, 3, 7, 5, 13, 19, 59)),
    (203, (1, 1, 3, 9, 25, 29, 41)), (211, (1, 3, 5, 13, 23, 1, 55)),
    (213, (1, 3, 7, 3, 13, 59, 17)),
)  # fmt: skip
MAX_SOBOL_DIM = len(_JOE_KUO)


def _direction_numbers(dim: int) -> np.ndarray:
    """Direction numbers ``V[j, k] = m_k << (32 - k - 1)`` as uint32, shape ``[dim, 32]``."""
    v = np.zeros((dim, _BITS), dtype=np.uint64)
    for j in range(dim):
        poly, m_init = _JOE_KUO[j]
        if j == 0:
            m = [1] * _BITS
        else:
            s = poly.bit_length() - 1
            m = list(m_init)
            for k in range(s, _BITS):
                new = m[k - s] ^ (m[k - s] << s)
                for i in range(1, s):
                    if (poly >> (s - i)) & 1:
                        new ^= m[k - i] << i
                m.append(new)
        for k in range(_BITS):
            v[j, k] = np.uint64(m[k]) << np.uint64(_BITS - k - 1)
    return v.astype(np.uint32)


def _bits_msb_first(x: Array) -> Array:
    shifts = jnp.arange(_BITS - 1, -1, -1, dtype=jnp.uint32)
    return ((x[..., None] >> shifts) & jnp.uint32(1)).astype(jnp.int32)


def _pack_msb_first(bits: Array) -> Array:
    shifts = jnp.arange(_BITS - 1, -1, -1, dtype=jnp.uint32)
    return jnp.bitwise_or.reduce(bits.astype(jnp.uint32) << shifts, axis=-1)


def sobol_integers(num: int, dim: int, key: PRNGKeyArray | None = None) -> Array:
    """The first ``num`` Sobol points as 32-bit integers ``[num, dim]``; scrambled if ``key``."""
    if not 1 <= dim <= MAX_SOBOL_DIM:
        raise ValueError(
            f"Sobol designs are available for 1 <= d <= {MAX_SOBOL_DIM}, got d={dim}; "
            "use policy='lhs' or 'bmc' instead."
        )
    v = jnp.asarray(_direction_numbers(dim))  # [dim, 32]
    shift = jnp.zeros((dim,), jnp.uint32)
    if key is not None:
        key_matrix, key_shift = jax.random.split(key)
        # Linear matrix scramble: lower-triangular random bit matrices with unit diagonal.
        rand = jax.random.bernoulli(key_matrix, 0.5, (dim, _BITS, _BITS)).astype(jnp.int32)
        lower = jnp.tril(rand, -1) + jnp.eye(_BITS, dtype=jnp.int32)
        bits = _bits_msb_first(v)  # [dim, k, bit]
        bits = jnp.einsum("jab,jkb->jka", lower, bits) & 1
        v = _pack_msb_first(bits)
        shift = jax.random.bits(key_shift, (dim,), jnp.uint32)
    index = jnp.arange(num, dtype=jnp.uint32)
    gray = index ^ (index >> 1)
    out = jnp.broadcast_to(shift, (num, dim))
    for k in range(_BITS):
        bit_set = ((gray >> k) & jnp.uint32(1)).astype(bool)[:, None]
        out = out ^ jnp.where(bit_set, v[:, k][None, :], jnp.uint32(0))
    return out


def sobol_points(num: int, dim: int, *, key: PRNGKeyArray, dtype=None) -> Float[Array, "num dim"]:
    """``num`` scrambled Sobol points in the open unit cube ``(0, 1)^dim``."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    ints = sobol_integers(num, dim, key).astype(dtype)
    u = (ints + 0.5) / (2.0**_BITS)
    return jnp.clip(u, jnp.finfo(dtype).tiny, 1.0 - jnp.finfo(dtype).epsneg)


def latin_hypercube_points(
    num: int, dim: int, *, key: PRNGKeyArray, dtype=None
) -> Float[Array, "num dim"]:
    """A random Latin hypercube of ``num`` points in ``(0, 1)^dim`` (McKay et al., 1979)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    key_perm, key_jitter = jax.random.split(key)
    perms = jax.vmap(lambda k: jax.random.permutation(k, num))(jax.random.split(key_perm, dim))
    offsets = jax.random.uniform(key_jitter, (num, dim), dtype, 1e-6, 1.0 - 1e-6)
    return (perms.T.astype(dtype) + offsets) / num


def uniform_points(num: int, dim: int, *, key: PRNGKeyArray, dtype=None) -> Float[Array, "num dim"]:
    """``num`` independent uniform points in ``(0, 1)^dim`` (Bayesian Monte Carlo)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jax.random.uniform(key, (num, dim), dtype, 1e-12, 1.0 - 1e-12)


DESIGNS = {"sobol": sobol_points, "lhs": latin_hypercube_points, "bmc": uniform_points}
