"""Bayesian quadrature: a GP belief over the integrand, adaptively chosen nodes, a belief over the integral.

Integrates f(x) = exp(-40 (x - 0.3)^2) + 0.4 sin(7 x) over [0, 1] with adaptive
Bayesian quadrature (integral-variance reduction, ML-II kernel learning after
every step) and compares with Bayesian Monte Carlo (the same model on random nodes).

Run with ``python examples/bayesian_quadrature.py``; saves
``examples/figures/bayesian_quadrature.png``.
"""

import pathlib

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import integrate  # noqa: E402

from probnum_jax import quad  # noqa: E402

jax.config.update("jax_enable_x64", True)


def f(x):
    return jnp.exp(-40.0 * (x[0] - 0.3) ** 2) + 0.4 * jnp.sin(7.0 * x[0])


exact = integrate.quad(lambda t: float(f(jnp.array([t]))), 0.0, 1.0, epsabs=1e-13)[0]
measure = quad.LebesgueMeasure(0.0, 1.0)
key = jax.random.key(0)

# Adaptive BQ: 4 Sobol nodes, then 16 more, one at a time, each maximising the
# integral-variance reduction under the kernel refitted by ML-II.
adaptive = quad.bayesquad(f, measure=measure, num_evals=20, policy="ivr", num_initial=4, key=key)
# Bayesian Monte Carlo: the same GP model on 20 random nodes, for comparison.
bmc = quad.bayesquad(f, measure=measure, num_evals=20, policy="bmc", key=key)

print(f"exact integral      {exact:.10f}")
print(f"adaptive BQ (n=20)  {float(adaptive.mean):.10f} +- {float(adaptive.std):.1e}   |error| {abs(float(adaptive.mean) - exact):.1e}")
print(f"BMC (n=20)          {float(bmc.mean):.10f} +- {float(bmc.std):.1e}   |error| {abs(float(bmc.mean) - exact):.1e}")
print(f"learned lengthscale {float(adaptive.kernel.lengthscales[0]):.3f}, output scale {float(adaptive.kernel.output_scale):.3f}")

grid = jnp.linspace(0.0, 1.0, 400)[:, None]
mean, std = adaptive.predict(grid)
truth = jax.vmap(f)(grid)
# The posterior after the first 7 nodes (with the final kernel), where the uncertainty is visible.
early = quad.bayesquad_from_data(adaptive.nodes[:7], adaptive.fvals[:7], measure=measure, kernel=adaptive.kernel)
early_mean, early_std = early.predict(grid)

fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
ax = axes[0]
ax.plot(grid[:, 0], truth, "k", lw=1.5, label="integrand f")
ax.plot(grid[:, 0], early_mean, "C1", label="posterior mean, first 7 nodes")
ax.fill_between(grid[:, 0], early_mean - 2 * early_std, early_mean + 2 * early_std, color="C1", alpha=0.25,
                label="± 2 std, first 7 nodes")  # fmt: skip
ax.plot(grid[:, 0], mean, "C0--", label="posterior mean, all 20 nodes")
ax.fill_between(grid[:, 0], mean - 2 * std, mean + 2 * std, color="C0", alpha=0.25)
order = np.arange(adaptive.nodes.shape[0])
sc = ax.scatter(adaptive.nodes[:, 0], adaptive.fvals, c=order, cmap="viridis", zorder=3, label="nodes (colour: order)")
fig.colorbar(sc, ax=ax, label="evaluation index")
ax.set_title("GP posterior over the integrand (adaptive nodes)")
ax.set_xlabel("x")
ax.legend(fontsize=8, loc="lower left")

ax = axes[1]
n = np.asarray(adaptive.trace.num_nodes)
m, s = np.asarray(adaptive.trace.mean), np.asarray(adaptive.trace.std)
ax.axhline(exact, color="k", lw=1, label="exact integral")
ax.errorbar(n, m, yerr=2 * s, fmt="o-", color="C0", capsize=3, label="adaptive BQ (IVR): mean ± 2 std")
ax.errorbar([20.4], [float(bmc.mean)], yerr=[2 * float(bmc.std)], fmt="s", color="C3", capsize=3,
            label="Bayesian Monte Carlo, 20 random nodes")  # fmt: skip
ax.set_ylim(exact - 0.15, exact + 0.15)
ax.set_title("Belief over the integral as nodes are added")
ax.set_xlabel("number of nodes n")
ax.legend(fontsize=8)

ax = axes[2]
ax.semilogy(n, np.abs(m - exact), "o-", color="C0", label="adaptive BQ |error|")
ax.semilogy(n, s, "o:", color="C0", alpha=0.6, label="adaptive BQ std")
ax.semilogy([20], [abs(float(bmc.mean) - exact)], "s", color="C3", label="BMC |error| (n=20)")
ax.semilogy([20], [float(bmc.std)], "s", mfc="none", color="C3", label="BMC std (n=20)")
ax.set_title("Error and reported uncertainty")
ax.set_xlabel("number of nodes n")
ax.legend(fontsize=8)

fig.tight_layout()
out = pathlib.Path(__file__).parent / "figures" / "bayesian_quadrature.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=110)
print(f"saved {out}")
