"""Model adapters: equinox, flax nnx and flax linen give the same per-sample gradients."""

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from probnum_jax import posteriors
from probnum_jax.posteriors import curvature
from probnum_jax.posteriors._jaxpr_layers import layer_graph

_RNG = np.random.default_rng(0)
X = jnp.asarray(_RNG.normal(size=(4, 3)))
Y = jnp.array([0, 1, 1, 0])
_W1, _W2 = jnp.asarray(_RNG.normal(size=(3, 5))), jnp.asarray(_RNG.normal(size=(5, 2)))


def _weights():
    return _W1, 0.1 * jnp.arange(5.0), _W2, jnp.array([0.2, -0.1])


def reference_model(params, x):
    w1, b1, w2, b2 = params
    return jnp.tanh(x @ w1 + b1) @ w2 + b2


class _Linen(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2, name="out")(jnp.tanh(nn.Dense(5, name="hidden")(x)))


class _Nnx(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(3, 5, rngs=rngs, param_dtype=jnp.float64)
        self.out = nnx.Linear(5, 2, rngs=rngs, param_dtype=jnp.float64)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def _equinox():
    w1, b1, w2, b2 = _weights()
    # Built abstractly (no random init), then filled with the reference weights.
    mlp = eqx.filter_eval_shape(eqx.nn.MLP, 3, 2, 5, 1, activation=jnp.tanh, key=jax.random.key(2))
    mlp = eqx.tree_at(
        lambda m: (m.layers[0].weight, m.layers[0].bias, m.layers[1].weight, m.layers[1].bias),
        mlp,
        (w1.T, b1, w2.T, b2),
    )
    model_fn, params = posteriors.from_equinox(mlp)
    to_ref = lambda g: (g.layers[0].weight.T, g.layers[0].bias, g.layers[1].weight.T, g.layers[1].bias)  # noqa: E731
    return model_fn, params, to_ref


def _linen():
    w1, b1, w2, b2 = _weights()
    net = _Linen()
    variables = {"params": {"hidden": {"kernel": w1, "bias": b1}, "out": {"kernel": w2, "bias": b2}}}
    model_fn, params = posteriors.from_linen(net, variables)
    to_ref = lambda g: (g["hidden"]["kernel"], g["hidden"]["bias"], g["out"]["kernel"], g["out"]["bias"])  # noqa: E731
    return model_fn, params, to_ref


def _nnx():
    w1, b1, w2, b2 = _weights()
    net = nnx.eval_shape(lambda: _Nnx(nnx.Rngs(0)))
    net.hidden.kernel, net.hidden.bias = nnx.Param(w1), nnx.Param(b1)
    net.out.kernel, net.out.bias = nnx.Param(w2), nnx.Param(b2)
    model_fn, params = posteriors.from_nnx(net)
    to_ref = lambda g: (
        g["hidden"]["kernel"][...],
        g["hidden"]["bias"][...],
        g["out"]["kernel"][...],
        g["out"]["bias"][...],
    )  # noqa: E731
    return model_fn, params, to_ref


@pytest.mark.parametrize("make", [_equinox, _linen, _nnx], ids=["equinox", "linen", "nnx"])
def test_adapter(make):
    model_fn, params, to_ref = make()
    ref_params = _weights()
    np.testing.assert_allclose(model_fn(params, X), reference_model(ref_params, X), rtol=1e-12)
    # Two dense layers found; the last one (with its bias) is the last layer.
    graph = layer_graph(model_fn, params, X)
    assert len(graph.sites) == 2
    leaves = jax.tree.leaves(params)
    last = [leaves[i].shape for i in graph.last_dense]
    assert sorted(last) == [(2,), (5, 2) if leaves[graph.last_dense[0]].shape == (5, 2) else (2, 5)]
    # Per-sample gradients agree with a loop over the reference model.
    psg = curvature.per_sample_grads(model_fn, params, X, Y)
    grad = jax.jit(jax.grad(lambda p, x, y: -jax.nn.log_softmax(reference_model(p, x[None])[0])[y]))
    for i in range(X.shape[0]):
        expected = grad(ref_params, X[i], Y[i])
        ours = to_ref(jax.tree.map(lambda a: a[i], psg))
        for a, b in zip(ours, expected):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_from_linen_needs_params():
    with pytest.raises(ValueError, match="'params' collection"):
        posteriors.from_linen(_Linen(), {"batch_stats": {}})
