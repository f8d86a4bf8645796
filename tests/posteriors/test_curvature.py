"""Curvature quantities against brute-force references (loops, jax.jacobian, jax.hessian)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from probnum_jax.posteriors import curvature


def flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


@pytest.fixture(scope="module")
def problem(sink_problem):
    return sink_problem


def test_layers_are_found(problem):
    from probnum_jax.posteriors._jaxpr_layers import layer_graph

    graph = layer_graph(problem.model_fn, problem.params, problem.x)
    names = ["b", "conv", "conv_b", "dense", "out", "scale", "tied"]  # leaf order (sorted keys)
    layers = {name for i, name in enumerate(names) if graph.is_layer(i)}
    assert layers == {"conv", "dense", "out", "tied"}
    kinds = sorted((s.kind, s.num_rows, s.d_in, s.d_out) for s in graph.sites)
    # conv: 5 x 2 output pixels, 2 * 3 * 2 inputs; tied: two sites of one row each.
    assert kinds == [
        ("conv", 10, 12, 3),
        ("dense", 1, 4, 3),
        ("dense", 1, 4, 4),
        ("dense", 1, 4, 4),
        ("dense", 1, 30, 4),
    ]
    assert [names[i] for i in graph.last_dense] == ["out"]


def check_all(checks):
    """Run every named check and report all failures together (one test, one set of references)."""
    failures = []
    for name, check in checks:
        try:
            check()
        except AssertionError as e:
            failures.append(f"{name}: {e}")
    assert not failures, "\n\n".join(failures)


def test_first_order_quantities(problem):
    g = problem.per_sample_grads_loop()  # [n, p], a Python loop over samples
    args = (problem.model_fn, problem.params, problem.x, problem.y)
    sizes = [leaf.size for leaf in jax.tree.leaves(problem.params)]

    def per_sample_grads():
        psg = curvature.per_sample_grads(*args)
        ours = np.stack([flat(jax.tree.map(lambda a: a[i], psg)) for i in range(problem.x.shape[0])])
        np.testing.assert_allclose(ours, g, rtol=1e-10, atol=1e-12)

    def batch_l2():  # per leaf: split the flat gradients leaf by leaf
        parts = np.split(g, np.cumsum(sizes)[:-1], axis=1)
        for ours, ref in zip(jax.tree.leaves(curvature.batch_l2(*args)), parts):
            np.testing.assert_allclose(ours, np.sum(ref**2, 1), rtol=1e-10, atol=1e-12)

    check_all(
        [
            ("per_sample_grads", per_sample_grads),
            ("batch_l2", batch_l2),
            (
                "sum_grad_squared",
                lambda: np.testing.assert_allclose(
                    flat(curvature.sum_grad_squared(*args)), np.sum(g**2, 0), rtol=1e-10, atol=1e-12
                ),
            ),
            (
                "grad_variance",
                lambda: np.testing.assert_allclose(
                    flat(curvature.grad_variance(*args)), np.var(g, 0), rtol=1e-8, atol=1e-12
                ),
            ),
        ]
    )


def test_second_order_quantities(problem):
    ggn, hessian = problem.ggn(), problem.hessian()  # jax.jacobian and jax.hessian references
    args = (problem.model_fn, problem.params, problem.x, problem.y)
    v = jax.tree.map(lambda a: jnp.cos(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape)), problem.params)

    def ggn_diag_mc():
        exact = np.diag(ggn)
        draws = flat(curvature.ggn_diag_mc(*args, key=jax.random.key(0), num_samples=4000))
        # Relative Monte-Carlo error ~ 1/sqrt(4000) per entry.
        np.testing.assert_allclose(draws, exact, rtol=0.15, atol=0.02 * exact.max())
        assert not np.allclose(draws, exact, rtol=1e-6)  # it really is a random estimate

    def float32():
        params32 = jax.tree.map(lambda a: a.astype(jnp.float32), problem.params)
        ours = curvature.ggn_diag(problem.model_fn, params32, problem.x.astype(jnp.float32), problem.y)
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(ours))
        np.testing.assert_allclose(flat(ours), np.diag(ggn), rtol=1e-4, atol=1e-5 * np.abs(np.diag(ggn)).max())

    def jitted():
        f = jax.jit(lambda params: curvature.ggn_diag(problem.model_fn, params, problem.x, problem.y))
        np.testing.assert_allclose(flat(f(problem.params)), np.diag(ggn), rtol=1e-10, atol=1e-12)

    check_all(
        [
            (
                "ggn_diag",
                lambda: np.testing.assert_allclose(
                    flat(curvature.ggn_diag(*args)), np.diag(ggn), rtol=1e-10, atol=1e-12
                ),
            ),
            (
                "ggn_dense",
                lambda: np.testing.assert_allclose(
                    curvature.ggn_dense(*args, chunk_size=3), ggn, rtol=1e-10, atol=1e-12
                ),
            ),
            (
                "hessian_diag",
                lambda: np.testing.assert_allclose(
                    flat(curvature.hessian_diag(*args)), np.diag(hessian), rtol=1e-9, atol=1e-11
                ),
            ),
            (
                "ggn_matvec",
                lambda: np.testing.assert_allclose(
                    flat(jax.jit(lambda v: curvature.ggn_matvec(*args)(v))(v)), ggn @ flat(v), rtol=1e-10, atol=1e-11
                ),
            ),
            (
                "hessian_matvec",
                lambda: np.testing.assert_allclose(
                    flat(jax.jit(lambda v: curvature.hessian_matvec(*args)(v))(v)),
                    hessian @ flat(v),
                    rtol=1e-10,
                    atol=1e-11,
                ),
            ),
            ("ggn_diag_mc", ggn_diag_mc),
            ("float32", float32),
            ("jit", jitted),
        ]
    )


def test_kfac_is_exact_for_a_linear_layer_with_one_output():
    # A single dense layer with one output per sample: the KFAC block of the
    # kernel, and the bias block, equal the exact GGN blocks.
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.normal(size=(9, 4))), jnp.asarray(rng.normal(size=(9, 1)))
    params = {"b": jnp.array([0.3]), "w": jnp.asarray(rng.normal(size=(4, 1)))}

    def model_fn(p, x):
        return x @ p["w"] + p["b"]

    factors = curvature.kfac(model_fn, params, x, y, likelihood="regression")
    # Exact GGN of a linear model with unit-noise Gaussian likelihood: [1, x]^T [1, x].
    design = np.concatenate([np.ones((9, 1)), np.asarray(x)], axis=1)
    exact = design.T @ design  # order: b, w
    np.testing.assert_allclose(factors["w"].to_dense(), exact[1:, 1:], rtol=1e-12)
    np.testing.assert_allclose(factors["b"].to_dense(), exact[:1, :1], rtol=1e-12)
    np.testing.assert_allclose(factors["w"].a * factors["w"].scale * factors["w"].b[0, 0], exact[1:, 1:], rtol=1e-12)
    diag = curvature.ggn_diag(model_fn, params, x, y, likelihood="regression")
    np.testing.assert_allclose(flat(diag), np.diag(exact), rtol=1e-12)


@pytest.mark.slow
def test_kfac_factors_of_a_convolution():
    # A-factor of a conv layer = sum of im2col patches' outer products, built here by explicit slicing.
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Conv(2, (2, 2), padding="VALID", use_bias=False)(x).reshape(x.shape[0], -1)

    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 3, 4, 2)))
    net = Net()
    params = net.init(jax.random.key(1), x)["params"]
    model_fn = lambda p, x: net.apply({"params": p}, x)  # noqa: E731
    y = jnp.zeros((3, 12))
    k = curvature.kfac(model_fn, params, x, y, likelihood="regression")["Conv_0"]["kernel"]
    xs = np.asarray(x)
    patches = [
        xs[n, i : i + 2, j : j + 2, :].transpose(2, 0, 1).ravel() for n in range(3) for i in range(2) for j in range(3)
    ]
    patches = np.stack(patches)  # [n * T, C_in * kh * kw], (C_in, kh, kw) order = canonical (I, H, W)
    np.testing.assert_allclose(k.a, patches.T @ patches, rtol=1e-12)
    # Linear model with identity loss Hessian: B = n * T * I_out.
    np.testing.assert_allclose(k.b, 18.0 * np.eye(2), rtol=1e-12)
    assert float(k.scale) == pytest.approx(1.0 / 18.0)
    # to_dense is in the leaf's flattened order: compare with the exact GGN on
    # a model whose output is one pixel (T = 1) via a consistency identity.
    dense = k.to_dense()
    assert dense.shape == (16, 16)
    np.testing.assert_allclose(dense, dense.T)


@pytest.mark.slow
def test_kfac_monte_carlo_is_unbiased(problem):
    args = (problem.model_fn, problem.params, problem.x, problem.y)
    exact = curvature.kfac(*args)
    mc = curvature.kfac(*args, key=jax.random.key(1), num_samples=3000)
    is_kf = lambda z: isinstance(z, curvature.KroneckerFactors)  # noqa: E731
    for e, m in zip(jax.tree.leaves(exact, is_leaf=is_kf), jax.tree.leaves(mc, is_leaf=is_kf)):
        np.testing.assert_allclose(m.a, e.a, rtol=1e-12)  # the input factor is not random
        np.testing.assert_allclose(m.b, e.b, rtol=0.15, atol=0.03 * np.abs(e.b).max())


@pytest.mark.slow
def test_kfac_blocks_of_non_layer_leaves_are_exact(problem):
    # Leaves that are not layer kernels (biases, the scale) get their exact GGN block.
    references = {"ggn": problem.ggn()}
    factors = curvature.kfac(problem.model_fn, problem.params, problem.x, problem.y)
    sizes = [leaf.size for leaf in jax.tree.leaves(problem.params)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for i, name in enumerate(["b", "conv", "conv_b", "dense", "out", "scale", "tied"]):
        if name in ("b", "conv_b", "scale"):
            block = references["ggn"][starts[i] : starts[i + 1], starts[i] : starts[i + 1]]
            np.testing.assert_allclose(factors[name].to_dense(), block, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_vmap_and_grad(problem):
    p = problem
    scales = jnp.array([0.5, 1.0, 2.0])
    batched = jax.vmap(
        lambda s: curvature.sum_grad_squared(p.model_fn, jax.tree.map(lambda a: s * a, p.params), p.x, p.y)
    )(scales)
    for i, s in enumerate(scales):
        single = curvature.sum_grad_squared(p.model_fn, jax.tree.map(lambda a: s * a, p.params), p.x, p.y)
        np.testing.assert_allclose(flat(jax.tree.map(lambda a: a[i], batched)), flat(single), rtol=1e-10)

    def total_ggn(w):
        return jnp.sum(ravel_pytree(curvature.ggn_diag(p.model_fn, p.unravel(w), p.x, p.y))[0])

    g = jax.grad(total_ggn)(p.flat)
    e = jnp.zeros_like(p.flat).at[3].set(1.0)
    h = 1e-6
    fd = (total_ggn(p.flat + h * e) - total_ggn(p.flat - h * e)) / (2 * h)
    assert float(g[3]) == pytest.approx(float(fd), rel=1e-6)


@pytest.mark.parametrize(
    "fn", [curvature.ggn_diag, curvature.per_sample_grads, curvature.kfac, curvature.hessian_diag, curvature.ggn_dense]
)
def test_bad_input(fn, problem):
    p = problem
    with pytest.raises(ValueError, match="likelihood"):
        fn(p.model_fn, p.params, p.x, p.y, likelihood="poisson")
    with pytest.raises(ValueError, match=r"y must have shape \[n\]"):
        fn(p.model_fn, p.params, p.x, p.y[:-1])
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        fn(p.model_fn, p.params, p.x, p.y.at[0].set(7))
    with pytest.raises(TypeError, match="integer class labels"):
        fn(p.model_fn, p.params, p.x, p.y.astype(float))
    with pytest.raises(ValueError, match=r"shape \[n, C\]"):
        fn(p.model_fn, p.params, p.x, jnp.zeros((5, 2)), likelihood="regression")
    nan_params = dict(p.params, out=p.params["out"].at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="params must be finite"):
        fn(p.model_fn, nan_params, p.x, p.y)
    with pytest.raises(ValueError, match=r"outputs of shape \[n, C\]"):
        fn(lambda params, x: p.model_fn(params, x)[:, 0], p.params, p.x, p.y)
