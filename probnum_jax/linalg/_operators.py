"""Structured symmetric operators for posterior covariances and matrix-belief means.

Every covariance the linear solvers return has the form

    prior_scale * prior + factor @ middle @ factor.T

with a (possibly absent) prior operator, an ``[n, k]`` factor and a small
``[k]`` (diagonal) or ``[k, k]`` middle matrix. Matrix-vector products, the
diagonal and the trace cost ``O(n k)`` plus one prior application; the dense
``n × n`` matrix is only formed by :meth:`PriorPlusLowRank.as_matrix`.

:class:`GrowingBasis` stores the search directions of a solve in a fixed-size
buffer (so the solve jit-compiles under ``lax.while_loop``) and computes its
products blockwise over the filled part only, so iteration ``k`` costs
``O(n k)`` however large the buffer is.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Float, Int


class PriorPlusLowRank(eqx.Module):
    """The symmetric operator ``prior_scale * prior + factor @ middle @ factor.T``.

    Attributes:
        prior: a lineax operator, or ``None`` for no prior term.
        prior_scale: scalar multiplying the prior.
        factor: ``[n, k]`` low-rank factor.
        middle: ``[k]`` (a diagonal) or ``[k, k]`` symmetric middle matrix;
            negative entries are downdates.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.linalg import PriorPlusLowRank
        >>> op = PriorPlusLowRank(None, jnp.asarray(0.0), jnp.ones((3, 1)), jnp.ones(1))
        >>> op.diagonal().tolist(), float(op.trace())
        ([1.0, 1.0, 1.0], 3.0)
    """

    prior: lx.AbstractLinearOperator | None
    prior_scale: Float[Array, ""]
    factor: Float[Array, "n k"]
    middle: Float[Array, " k"] | Float[Array, "k k"]

    @property
    def shape(self) -> tuple[int, int]:
        n = self.factor.shape[0]
        return (n, n)

    def _middle_mv(self, c):
        return self.middle * c if self.middle.ndim == 1 else self.middle @ c

    def mv(self, v: Float[Array, " n"]) -> Float[Array, " n"]:
        """The matrix-vector product ``self @ v``."""
        out = self.factor @ self._middle_mv(self.factor.T @ v)
        if self.prior is not None:
            out = out + self.prior_scale * self.prior.mv(v)
        return out

    def __matmul__(self, v):
        return self.mv(v)

    def diagonal(self) -> Float[Array, " n"]:
        """The diagonal, in ``O(n k)`` (plus the prior's diagonal)."""
        if self.middle.ndim == 1:
            diag = jnp.sum(self.factor**2 * self.middle, axis=1)
        else:
            diag = jnp.sum((self.factor @ self.middle) * self.factor, axis=1)
        if self.prior is not None:
            diag = diag + self.prior_scale * lx.diagonal(self.prior).astype(diag.dtype)
        return diag

    def trace(self) -> Float[Array, ""]:
        """The trace, in ``O(n k)`` (plus the prior's diagonal)."""
        return jnp.sum(self.diagonal())

    def as_matrix(self) -> Float[Array, "n n"]:
        """The dense ``[n, n]`` matrix (formed on request only)."""
        middle = jnp.diag(self.middle) if self.middle.ndim == 1 else self.middle
        dense = self.factor @ middle @ self.factor.T
        if self.prior is not None:
            dense = dense + self.prior_scale * self.prior.as_matrix()
        return dense

    def as_lineax(self) -> lx.FunctionLinearOperator:
        """This operator as a symmetric ``lineax`` operator."""
        structure = jax.ShapeDtypeStruct((self.shape[0],), self.factor.dtype)
        return lx.FunctionLinearOperator(self.mv, structure, tags=lx.symmetric_tag)


def concatenate(operators: list[PriorPlusLowRank], weights) -> PriorPlusLowRank:
    """``sum_j weights[j] * operators[j]`` for operators with the same prior (not checked)."""
    dense = any(op.middle.ndim == 2 for op in operators)
    middles = []
    for w, op in zip(weights, operators):
        m = w * op.middle
        middles.append(jnp.diag(m) if dense and m.ndim == 1 else m)
    middle = jax.scipy.linalg.block_diag(*middles) if dense else jnp.concatenate(middles)
    return PriorPlusLowRank(
        operators[0].prior,
        sum(w * op.prior_scale for w, op in zip(weights, operators)),
        jnp.concatenate([op.factor for op in operators], axis=1),
        middle,
    )


def apply_rows(operator: lx.AbstractLinearOperator | None, rows: Array) -> Array:
    """Apply ``operator`` to every row of ``rows`` (``None`` is the identity)."""
    return rows if operator is None else jax.vmap(operator.mv)(rows)


def prior_mv(operator: lx.AbstractLinearOperator | None, v: Array) -> Array:
    return v if operator is None else operator.mv(v)


class GrowingBasis(eqx.Module):
    """A fixed-capacity stack of vectors, filled one row at a time.

    ``rows`` is ``[capacity, n]``; rows at and after ``count`` are zero. The
    products :meth:`project` (``rows @ v``) and :meth:`combine`
    (``rows.T @ c``) only visit the blocks that hold vectors.
    """

    rows: Float[Array, "capacity n"]
    count: Int[Array, ""]
    block: int = eqx.field(static=True)

    @classmethod
    def empty(cls, capacity: int, n: int, dtype, block: int = 32) -> "GrowingBasis":
        block = max(1, min(block, capacity))
        padded = -(-capacity // block) * block
        return cls(jnp.zeros((padded, n), dtype), jnp.asarray(0), block)

    def _num_blocks(self):
        return (self.count + self.block - 1) // self.block

    @property
    def _dense(self) -> bool:
        # Small buffers: one dense product is cheaper (and compiles faster) than a block loop.
        return self.rows.shape[0] <= 4 * self.block

    def project(self, v: Float[Array, " n"]) -> Float[Array, " capacity"]:
        """``rows @ v`` (zero past ``count``)."""
        if self._dense:
            return self.rows @ v

        def body(j, out):
            blk = jax.lax.dynamic_slice_in_dim(self.rows, j * self.block, self.block)
            return jax.lax.dynamic_update_slice_in_dim(out, blk @ v, j * self.block, 0)

        out = jnp.zeros(self.rows.shape[0], self.rows.dtype)
        return jax.lax.fori_loop(0, self._num_blocks(), body, out)

    def combine(self, c: Float[Array, " capacity"]) -> Float[Array, " n"]:
        """``rows.T @ c``."""
        if self._dense:
            return c @ self.rows

        def body(j, out):
            blk = jax.lax.dynamic_slice_in_dim(self.rows, j * self.block, self.block)
            cj = jax.lax.dynamic_slice_in_dim(c, j * self.block, self.block)
            return out + cj @ blk

        out = jnp.zeros(self.rows.shape[1], self.rows.dtype)
        return jax.lax.fori_loop(0, self._num_blocks(), body, out)

    def append(self, v: Float[Array, " n"], accept) -> "GrowingBasis":
        """Store ``v`` as row ``count`` if ``accept``; otherwise leave the basis unchanged."""
        index = jnp.minimum(self.count, self.rows.shape[0] - 1)
        row = jnp.where(accept, v, self.rows[index])
        rows = jax.lax.dynamic_update_slice_in_dim(self.rows, row[None], index, 0)
        return GrowingBasis(rows, self.count + accept.astype(self.count.dtype), self.block)

    def columns(self) -> Float[Array, "n capacity"]:
        """The stored vectors as the columns of an ``[n, capacity]`` matrix."""
        return self.rows.T

    def mask(self) -> Float[Array, " capacity"]:
        """1 for filled rows, 0 for empty ones."""
        return (jnp.arange(self.rows.shape[0]) < self.count).astype(self.rows.dtype)


def orthonormalise(vector, basis: GrowingBasis, dual: GrowingBasis, image=None, image_basis=None):
    """Orthonormalise ``vector`` against ``basis`` in an inner product ``<u, v> = u^T M v``.

    ``image = M vector`` and ``image_basis`` holds ``M`` applied to the rows
    of ``basis``; ``dual`` holds the rows ``d_j`` with ``<basis_j, v> = d_j^T v``.
    Without ``image`` the inner product is Euclidean-like (``M`` applied
    implicitly: image and vector coincide, ``image_basis`` is ``basis``).
    Classical Gram–Schmidt with one re-orthogonalisation ("twice is enough";
    Giraud, Langou, Rozložník 2005).

    Returns ``(vector, image, coefficients, norm)``: the normalised vector and
    image (zero when the norm vanishes), the expansion coefficients
    ``vector = basis.T @ coefficients + norm * new`` and the norm.
    """
    same = image is None
    coefficients = 0.0
    for _ in range(2):
        c = dual.project(vector)
        coefficients = coefficients + c
        vector = vector - basis.combine(c)
        image = vector if same else image - image_basis.combine(c)
    norm2 = jnp.dot(vector, image)
    ok = norm2 > 0
    scale = jnp.where(ok, jax.lax.rsqrt(jnp.where(ok, norm2, 1.0)), 0.0)
    return vector * scale, image * scale, coefficients, jnp.sqrt(jnp.maximum(norm2, 0.0))
