"""Quickstart: solve Lotka–Volterra with the EK1 and plot the posterior against a reference.

Run with ``python examples/quickstart.py``; saves ``examples/figures/quickstart.png``.
"""

import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import diffrax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import probnum_jax as pnx  # noqa: E402

jax.config.update("jax_enable_x64", True)

ivp = pnx.problems.lotka_volterra()
ts = jnp.linspace(ivp.t0, ivp.t1, 200)

# The probabilistic solve: a Gaussian posterior over the solution at `ts`.
solver = pnx.ode.EK1(num_derivatives=4, strategy="fixedpoint")
sol = pnx.ode.solve(
    ivp.vector_field, ivp.y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args, solver=solver, save_at=ts,
    atol=1e-4, rtol=1e-4,
)

# An independent reference: diffrax Tsit5 at a tight tolerance.
reference = diffrax.diffeqsolve(
    diffrax.ODETerm(ivp.vector_field), diffrax.Tsit5(), ivp.t0, ivp.t1, dt0=None, y0=ivp.y0,
    args=ivp.args, saveat=diffrax.SaveAt(ts=ts),
    stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12), max_steps=100_000,
).ys

error = jnp.abs(sol.mean - reference)
ratio = jnp.exp(jnp.mean(jnp.log(error[1:] / sol.std[1:])))
print(
    f"EK1(q=4): {int(sol.num_steps)} steps ({int(sol.num_rejected)} rejected), "
    f"final error {float(jnp.max(error[-1])):.2e}, "
    f"geometric mean |error|/std {float(ratio):.2f}"
)

fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True, constrained_layout=True)
for i, (label, color) in enumerate([("prey", "C0"), ("predator", "C1")]):
    axes[0].plot(ts, reference[:, i], "k--", lw=1, label="reference (diffrax)" if i == 0 else None)
    axes[0].plot(ts, sol.mean[:, i], color=color, label=f"{label}: posterior mean")
    axes[0].fill_between(
        ts, sol.mean[:, i] - 2 * sol.std[:, i], sol.mean[:, i] + 2 * sol.std[:, i],
        color=color, alpha=0.3, label="± 2 std" if i == 0 else None,
    )
    axes[1].semilogy(ts[1:], error[1:, i], color=color, label=f"|error| {label}")
    axes[1].semilogy(ts[1:], 2 * sol.std[1:, i], color=color, ls=":", label=f"2 std {label}")
axes[0].set_ylabel("population")
axes[0].legend(loc="upper right", fontsize=8)
axes[1].set_xlabel("t")
axes[1].set_ylabel("error vs. 2 std")
axes[1].legend(loc="lower right", fontsize=8, ncol=2)
axes[0].set_title("Lotka–Volterra with the probabilistic EK1 solver")

out = pathlib.Path(__file__).parent / "figures" / "quickstart.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=120)
print(f"saved {out}")
