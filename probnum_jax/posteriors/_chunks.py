"""Sums over a batch computed chunk by chunk, to bound memory."""

import jax
import jax.numpy as jnp


def default_chunk_size(n: int, elements_per_sample: int, budget: int = 2**24) -> int:
    """Largest chunk with at most ``budget`` elements, at least 1 and at most ``n``."""
    return int(max(1, min(n, budget // max(1, elements_per_sample))))


def sum_over_chunks(fn, arrays, chunk_size: int):
    """``sum_i fn(arrays[i])`` over the leading axis, ``chunk_size`` samples at a time.

    ``fn(chunk, weight)`` gets a chunk of the arrays (a pytree with leading axis
    ``chunk_size``) and a 0/1 ``weight[chunk_size]`` that masks the padding of
    the last chunk, and returns a pytree summed over its samples.
    """
    n = jax.tree.leaves(arrays)[0].shape[0]
    num_chunks = -(-n // chunk_size)
    pad = num_chunks * chunk_size - n

    def padded(a):
        a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)], axis=0) if pad else a
        return a.reshape((num_chunks, chunk_size) + a.shape[1:])

    chunks = jax.tree.map(padded, arrays)
    weights = (jnp.arange(num_chunks * chunk_size) < n).reshape(num_chunks, chunk_size)
    if num_chunks == 1:
        return fn(jax.tree.map(lambda c: c[0], chunks), weights[0])

    def body(total, chunk):
        part = fn(*chunk)
        return jax.tree.map(jnp.add, total, part), None

    first = fn(jax.tree.map(lambda c: c[0], chunks), weights[0])
    rest = (jax.tree.map(lambda c: c[1:], chunks), weights[1:])
    total, _ = jax.lax.scan(body, first, rest)
    return total


def map_over_chunks(fn, arrays, chunk_size: int):
    """``fn`` applied to chunks of the leading axis and concatenated (bounded memory)."""
    n = jax.tree.leaves(arrays)[0].shape[0]
    if chunk_size >= n:
        return fn(arrays)
    num_chunks = -(-n // chunk_size)
    pad = num_chunks * chunk_size - n

    def padded(a):
        a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)], axis=0) if pad else a
        return a.reshape((num_chunks, chunk_size) + a.shape[1:])

    out = jax.lax.map(fn, jax.tree.map(padded, arrays))
    return jax.tree.map(lambda o: o.reshape((num_chunks * chunk_size,) + o.shape[2:])[:n], out)
