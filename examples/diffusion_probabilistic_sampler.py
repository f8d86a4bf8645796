"""A diffusion model sampled by a probabilistic ODE solver, with a numerical error bar on every sample.

A small ``diffusion.ScoreMLP`` is trained by denoising score matching on the
two-moons data set (sklearn ``make_moons``, standardised) with EDM's
parameterisation and preconditioning (Karras et al. 2022).
Its probability-flow ODE is then solved from prior noise by ``ode.EK0``
(``num_derivatives=2``, adaptive steps). Besides the sample, the Gaussian ODE
filter returns ``info.std``: the posterior standard deviation of the sample
given the score evaluations it spent, i.e. how far the numerical solve may be
from the exact flow of *this* score model (it says nothing about how good the
model is).

The figure shows (left) the EK0 samples coloured by that numerical std (the
norm per sample, log colour scale), next to (middle) held-out data; samples
whose trajectories pass through the regions where the flow bends most get the
largest error bars. On the right, quality (sliced Wasserstein distance to
held-out data) against the number of score evaluations (NFE) for EK0, diffrax
Tsit5 and the Euler-Maruyama reverse SDE, with the sampling floor (the distance
between two held-out sets of the same size) as a dotted line.

Run with ``python examples/diffusion_probabilistic_sampler.py``; saves
``examples/figures/diffusion_probabilistic_sampler.png``.
"""

import pathlib
import time

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import diffrax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402

from probnum_jax import diffusion, ode  # noqa: E402

started = time.perf_counter()
NUM_SAMPLES = 500
TRAIN_STEPS = 4000

# Data: two moons, standardised; held-out sets for the quality measure and its floor.
train, _ = make_moons(8000, noise=0.05, random_state=0)
shift, scale = train.mean(0), train.std(0)
standardise = lambda x: jnp.asarray((x - shift) / scale, jnp.float32)  # noqa: E731
data = standardise(train)
heldout = standardise(make_moons(NUM_SAMPLES, noise=0.05, random_state=1)[0])
heldout2 = standardise(make_moons(NUM_SAMPLES, noise=0.05, random_state=2)[0])

# Train an MLP; sde.score_model wraps it in EDM's preconditioned denoiser and returns its score.
sde = diffusion.EDM()
net_fn, params = diffusion.from_equinox(diffusion.ScoreMLP(2, key=jax.random.key(0), width=128, depth=3))
model_fn = sde.score_model(net_fn)
optimizer = optax.adam(optax.cosine_decay_schedule(3e-3, TRAIN_STEPS, alpha=0.05))
params, losses = diffusion.train(model_fn, params, sde, data, optimizer, key=jax.random.key(1),
                                 num_steps=TRAIN_STEPS, batch_size=256)
print(f"loss: first 100 steps {float(losses[:100].mean()):.3f}, last 100 steps {float(losses[-100:].mean()):.3f}")
score_fn = lambda x, t: model_fn(params, x, t)  # noqa: E731

sw_key = jax.random.key(2)
sw = lambda x: float(diffusion.sliced_wasserstein(x, heldout, key=sw_key))  # noqa: E731
floor = sw(heldout2)


def sample(solver, **kwargs):
    return diffusion.sample(score_fn, sde, key=jax.random.key(3), shape=(2,), num_samples=NUM_SAMPLES,
                            solver=solver, **kwargs)


# The probabilistic sampler: EK0 with two derivatives, adaptive steps.
x, info = sample(ode.EK0(num_derivatives=2), atol=1e-3, rtol=1e-3)
std = jnp.linalg.norm(info.std, axis=1)
print(f"EK0 (tol 1e-3): mean NFE {float(info.nfe.mean()):.1f}, SW to held-out {sw(x):.4f} "
      f"(floor, held-out vs held-out: {floor:.4f}); numerical std per sample: median {float(jnp.median(std)):.1e}, "
      f"max {float(std.max()):.1e}")

# Quality against cost for EK0, Tsit5 and Euler-Maruyama on the same trained model.
curves = {
    "EK0(q=2)": [sample(ode.EK0(num_derivatives=2), atol=tol, rtol=tol) for tol in (1e-1, 1e-2, 1e-3, 1e-4)],
    "diffrax Tsit5": [sample(diffrax.Tsit5(), atol=tol, rtol=tol) for tol in (1e-1, 1e-2, 1e-3, 1e-4)],
    "Euler-Maruyama": [sample("euler_maruyama", num_steps=n) for n in (10, 30, 100, 300)],
}
curves = {name: ([float(i.nfe.mean()) for _, i in runs], [sw(s) for s, _ in runs]) for name, runs in curves.items()}
for name, (nfe, quality) in curves.items():
    print(f"  {name:15s} " + "  ".join(f"NFE {n:6.1f}: SW {q:.4f}" for n, q in zip(nfe, quality)))

fig, (ax_s, ax_d, ax_c) = plt.subplots(1, 3, figsize=(15, 4.6))
order = jnp.argsort(std)  # draw the largest error bars on top
points = ax_s.scatter(x[order, 0], x[order, 1], c=std[order], s=7, cmap="viridis", norm=LogNorm())
fig.colorbar(points, ax=ax_s, label="numerical std |info.std|")
ax_s.set_title(f"EK0 samples (tol 1e-3, mean NFE {float(info.nfe.mean()):.0f})\ncolour: numerical std per sample")
ax_d.scatter(heldout[:, 0], heldout[:, 1], s=7, color="k")
ax_d.set_title("held-out data")
for ax in (ax_s, ax_d):
    ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal")
for (name, (nfe, quality)), colour in zip(curves.items(), ("tab:red", "tab:blue", "tab:gray")):
    ax_c.plot(nfe, quality, "o-", color=colour, label=name)
ax_c.axhline(floor, color="k", ls=":", lw=0.8, label="floor (held-out vs held-out)")
ax_c.set(xscale="log", yscale="log", xlabel="mean NFE per sample", ylabel="sliced Wasserstein to held-out",
         title="quality vs score evaluations")
ax_c.grid(True, which="both", alpha=0.3)
ax_c.legend(fontsize=8)
fig.tight_layout()
out = pathlib.Path(__file__).parent / "figures" / "diffusion_probabilistic_sampler.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=120)
print(f"saved {out} ({time.perf_counter() - started:.0f} s)")
