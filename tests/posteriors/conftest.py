"""Small models shared by the posteriors tests, with brute-force references.

References use ``jax.jacobian``/``jax.hessian`` on the flattened parameters and
Python loops over samples: independent of the factor machinery under test.
"""

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from probnum_jax import posteriors  # noqa: E402


class Problem:
    """A model, its parameters and data, plus brute-force curvature references."""

    def __init__(self, name, model_fn, params, x, y, likelihood):
        self.name, self.model_fn, self.params, self.x, self.y = name, model_fn, params, x, y
        self.likelihood = likelihood
        flat, self.unravel = ravel_pytree(params)
        self.flat = flat

    def sample_loss(self, params, x_i, y_i):
        f = self.model_fn(params, x_i[None])[0]
        if self.likelihood == "classification":
            return -jax.nn.log_softmax(f)[y_i]
        return 0.5 * jnp.sum((y_i - f) ** 2)

    def per_sample_grads_loop(self):
        """Flattened per-sample gradients ``[n, p]``, one jitted call per sample (a Python loop)."""
        grad = jax.jit(jax.grad(lambda w, xi, yi: self.sample_loss(self.unravel(w), xi, yi)))
        return np.stack([np.asarray(grad(self.flat, self.x[i], self.y[i])) for i in range(self.x.shape[0])])

    def ggn(self):
        """``sum_i J_i^T Lambda_i J_i`` with ``J_i`` from ``jax.jacobian``."""

        def one(x_i):
            jac = jax.jacobian(lambda w: self.model_fn(self.unravel(w), x_i[None])[0])(self.flat)
            f = self.model_fn(self.params, x_i[None])[0]
            if self.likelihood == "classification":
                p = jax.nn.softmax(f)
                lam = jnp.diag(p) - jnp.outer(p, p)
            else:
                lam = jnp.eye(f.shape[0])
            return jac.T @ lam @ jac

        return np.asarray(jax.jit(lambda x: jnp.sum(jax.vmap(one)(x), axis=0))(self.x))

    def hessian(self):
        """Hessian of the summed loss from ``jax.hessian``."""

        def loss(w):
            return jnp.sum(jax.vmap(lambda xi, yi: self.sample_loss(self.unravel(w), xi, yi))(self.x, self.y))

        return np.asarray(jax.jit(jax.hessian(loss))(self.flat))


def _sink_model(params, x):
    """Every layer form at once: a convolution (NCHW/OIHW), a transposed dense
    kernel, one kernel applied twice (T = 2 rows per sample), biases and an
    elementwise scale (leaves that are not layer kernels)."""
    h = jax.lax.conv_general_dilated(x, params["conv"], (1, 2), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    h = jnp.tanh(h + params["conv_b"][None, :, None, None]).reshape(x.shape[0], -1)
    h = jnp.tanh(h @ params["dense"].T)
    h = jnp.tanh(h @ params["tied"] + params["b"])
    h = jnp.tanh(h @ params["tied"]) * params["scale"]
    return h @ params["out"]


def _sink_problem(likelihood="classification"):
    # numpy random numbers: jax.random would compile a kernel per shape.
    rng = np.random.default_rng(4)
    params = {
        "conv": 0.5 * rng.normal(size=(3, 2, 3, 2)),
        "conv_b": 0.1 * rng.normal(size=(3,)),
        "dense": 0.3 * rng.normal(size=(4, 30)),
        "tied": 0.8 * rng.normal(size=(4, 4)),
        "b": 0.1 * rng.normal(size=(4,)),
        "scale": np.array(1.3),
        "out": rng.normal(size=(4, 3)),
    }
    params = jax.tree.map(jnp.asarray, params)
    x = jnp.asarray(rng.normal(size=(5, 2, 5, 4)))
    if likelihood == "classification":
        y = jnp.array([0, 2, 1, 2, 1])
    else:
        y = jnp.asarray(rng.normal(size=(5, 3)))
    return Problem("sink_" + likelihood, _sink_model, params, x, y, likelihood)


@pytest.fixture(scope="session")
def sink_problem():
    return _sink_problem()


def numpy_mlp(in_size, out_size, width, depth, activation, seed):
    """An ``eqx.nn.MLP`` built abstractly and filled with numpy-drawn weights (no jax.random)."""
    mlp = eqx.filter_eval_shape(
        eqx.nn.MLP, in_size, out_size, width, depth, activation=activation, key=jax.random.key(0)
    )
    rng = np.random.default_rng(seed)
    weights = []
    for layer in mlp.layers:
        out_features, in_features = layer.weight.shape
        bound = 1 / np.sqrt(in_features)
        weights += [
            rng.uniform(-bound, bound, (out_features, in_features)),
            rng.uniform(-bound, bound, (out_features,)),
        ]
    get = lambda m: [leaf for layer in m.layers for leaf in (layer.weight, layer.bias)]  # noqa: E731
    return eqx.tree_at(get, mlp, [jnp.asarray(w) for w in weights])


def _mlp_problem():
    model_fn, params = posteriors.from_equinox(numpy_mlp(3, 4, 5, 2, jnp.tanh, seed=0))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 3)))
    y = jnp.array([0, 1, 2, 3, 0, 1, 2, 3])
    return Problem("eqx_mlp", model_fn, params, x, y, "classification")


@pytest.fixture(scope="session")
def mlp_problem():
    return _mlp_problem()
