"""Laplace on digits: a reliability diagram of the MAP network against its Laplace posterior.

A ReLU MLP trained by optax on 300 of sklearn's digits (no weight decay) is
overconfident. A Kronecker-factored Laplace approximation of its last layer,
with the prior precision tuned on a validation split, keeps the accuracy and
moves the confidence towards the accuracy.

Run with ``python examples/laplace_digits.py``; saves
``examples/figures/laplace_digits.png``.
"""

import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from sklearn.datasets import load_digits

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from probnum_jax import posteriors  # noqa: E402
from probnum_jax.posteriors import laplace, metrics  # noqa: E402

# Data: 300 training, 300 validation and 1197 test digits.
data = load_digits()
perm = np.random.default_rng(2).permutation(len(data.target))
x, y = jnp.asarray(data.data[perm] / 16.0, jnp.float32), jnp.asarray(data.target[perm])
train, val, test = (x[:300], y[:300]), (x[300:600], y[300:600]), (x[600:], y[600:])

# The MAP network, trained full-batch with Adam.
mlp = eqx.nn.MLP(64, 10, 64, 2, activation=jax.nn.relu, key=jax.random.key(0))
model_fn, params = posteriors.from_equinox(mlp)
optimizer = optax.adam(1e-2)


@jax.jit
def train_map(params):
    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(model_fn(p, train[0]), train[1]).sum()

    def step(carry, _):
        p, state = carry
        updates, state = optimizer.update(jax.grad(loss)(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    return jax.lax.scan(step, (params, optimizer.init(params)), None, length=3000)[0][0]


params = train_map(params)

# Laplace: KFAC over the last layer, prior precision by validation NLL.
post = laplace.fit(model_fn, params, train, hessian="kfac", subset="last_layer")
post = laplace.optimize_prior_precision(post, val, method="gridsearch", grid=jnp.logspace(-2, 4, 25))

predictions = {
    "MAP": jax.nn.softmax(model_fn(params, test[0])),
    "Laplace (last-layer KFAC, GLM probit)": laplace.predict(post, test[0]),
}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
for ax, (name, probs) in zip(axes, predictions.items()):
    conf, acc, count = metrics.reliability_diagram(probs, test[1], num_bins=15)
    edges = np.linspace(0, 1, 16)
    filled = np.asarray(count) > 0
    acc_f, conf_f, left = np.asarray(acc)[filled], np.asarray(conf)[filled], edges[:-1][filled]
    ax.bar(left, acc_f, width=1 / 15, align="edge", edgecolor="k", label="accuracy per bin")
    ax.bar(
        left,
        np.abs(conf_f - acc_f),
        bottom=np.minimum(acc_f, conf_f),
        width=1 / 15,
        align="edge",
        color="C3",
        alpha=0.45,
        hatch="//",
        label="gap to the mean confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    summary = (
        f"acc {float(metrics.accuracy(probs, test[1])):.3f}   NLL {float(metrics.nll(probs, test[1])):.3f}\n"
        f"ECE {float(metrics.ece(probs, test[1])):.3f}   MCE {float(metrics.mce(probs, test[1])):.3f}"
    )
    ax.set(title=name, xlabel="confidence", xlim=(0, 1), ylim=(0, 1))
    ax.text(0.04, 0.86, summary, fontsize=9, bbox={"facecolor": "white", "alpha": 0.8})
    ax.legend(loc="lower right", fontsize=8)
    ax.text(
        0.99,
        0.02 + 0.16,
        f"{int(np.sum(count[:-1]))} of {test[1].shape[0]} inputs below 0.93",
        ha="right",
        fontsize=8,
        transform=ax.transAxes,
    )
    print(f"{name}: {summary.replace(chr(10), '   ')}")
axes[0].set_ylabel("accuracy")
fig.suptitle(f"digits, MLP 64-64-64-10 trained on 300 images; prior precision {float(post.prior_precision[0]):.3g}")
fig.tight_layout()
out = pathlib.Path(__file__).parent / "figures" / "laplace_digits.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=120)
print(f"saved {out}")
