"""Error and posterior uncertainty of probabilistic linear solvers, iteration by iteration.

Solves a Gaussian-process regression system ``(K + σ² I) α = y`` (an RBF Gram
matrix, n = 300) with

* ``linalg.bayescg`` (BayesCG under the Krylov prior, 5 post-iterations), and
* ``linalg.problinsolve`` (matrix-based belief, CG policy, Rayleigh calibration),

stopped after ``m = 1, ..., 60`` iterations (problinsolve: at 12 tolerances), and plots the true error
``||x_* - x_m||`` next to the posterior's own estimate ``sqrt(trace Cov)``.
The left panel uses one right-hand side; the right panel shows, for 20 random
right-hand sides, the ratio RMS(error) / RMS(posterior std) (1 = calibrated,
> 1 overconfident) and BayesCG's S-statistic ratio
``||x_* - x_m||_A^2 / trace(A Cov)``. Each early-stopped solve is one ``vmap``
over the iteration budgets, so the whole sweep compiles once per solver.

Run: ``python examples/linear_solver_uncertainty.py`` (about 30 s of CPU time,
mostly compilation); writes ``examples/figures/linear_solver_uncertainty.png``.
"""

import os

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from probnum_jax import linalg  # noqa: E402
from probnum_jax.problems._linear_systems import rbf_gram_matrix  # noqa: E402

N, MAX_ITERATIONS = 300, 60
budgets = jnp.arange(1, MAX_ITERATIONS + 1)

points = jax.random.uniform(jax.random.key(0), (N, 2))
A = rbf_gram_matrix(points, lengthscale=0.2, nugget=1e-2)
x_true = jax.random.normal(jax.random.key(1), (20, N))
B = x_true @ A


def bayescg_after(m, b):
    # maxiter is traced in bayescg, so one compiled loop serves every budget.
    return linalg.bayescg(A, b, maxiter=m, atol=0.0, rtol=0.0, throw=False)


@jax.jit
def bayescg_curves(x, b):
    def one(m):
        res = bayescg_after(m, b)
        stats = linalg.calibration_statistics(res, A, x)
        err = x - res.mean
        return jnp.stack([jnp.linalg.norm(err), jnp.sqrt(res.cov.trace()), jnp.sqrt(jnp.mean(err**2)),
                          jnp.sqrt(jnp.mean(res.std**2)), stats.s, stats.s_mean])

    return jax.vmap(one)(budgets)


RELATIVE_TOLERANCES = jnp.logspace(-0.5, -9, 12)


@jax.jit
def problinsolve_curves(x, b):
    # maxiter sizes problinsolve's buffers (static); the tolerance is traced, so a sweep over
    # tolerances compiles once and stops after increasing numbers of iterations.
    def one(rtol):
        res = linalg.problinsolve(A, b, maxiter=MAX_ITERATIONS, atol=0.0, rtol=rtol, throw=False)
        err = x - res.mean
        return jnp.stack([res.num_iterations, jnp.linalg.norm(err), jnp.sqrt(res.cov.trace()),
                          jnp.sqrt(jnp.mean(err**2)), jnp.sqrt(jnp.mean(res.std**2))])

    return jax.vmap(one)(RELATIVE_TOLERANCES)


def main():
    bcg = jax.vmap(bayescg_curves)(x_true, B)  # [rhs, budget, 6]
    pls = jax.vmap(problinsolve_curves)(x_true, B)  # [rhs, tolerance, 5]
    pls_iterations = pls[0, :, 0]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.semilogy(budgets, bcg[0, :, 0], "C0-", label="BayesCG: true error ||x* - x_m||")
    ax1.semilogy(budgets, bcg[0, :, 1], "C0--", label="BayesCG: posterior sqrt(trace Cov)")
    ax1.semilogy(pls_iterations, pls[0, :, 1], "C1o-", ms=3, label="problinsolve: true error")
    ax1.semilogy(pls_iterations, pls[0, :, 2], "C1s--", ms=3, label="problinsolve: posterior sqrt(trace Cov)")
    ax1.set_xlabel("iterations m")
    ax1.set_ylabel("Euclidean norm")
    ax1.set_title(f"GP system (K + 0.01 I) x = b, n = {N}: one right-hand side")
    ax1.legend(fontsize=8)

    ratio_bcg = jnp.sqrt(jnp.mean(bcg[:, :, 2] ** 2, axis=0) / jnp.mean(bcg[:, :, 3] ** 2, axis=0))
    ratio_pls = jnp.sqrt(jnp.mean(pls[:, :, 3] ** 2, axis=0) / jnp.mean(pls[:, :, 4] ** 2, axis=0))
    pls_mean_iterations = jnp.mean(pls[:, :, 0], axis=0)
    s_ratio = jnp.mean(bcg[:, :, 4], axis=0) / jnp.mean(bcg[:, :, 5], axis=0)
    ax2.semilogy(budgets, ratio_bcg, "C0-", label="BayesCG: RMS(error) / RMS(std)")
    ax2.semilogy(budgets, s_ratio, "C0:", label="BayesCG: S-statistic ||e||_A^2 / E||X - mu||_A^2")
    ax2.semilogy(pls_mean_iterations, ratio_pls, "C1o-", ms=3,
                 label="problinsolve: RMS(error) / RMS(std) (stopped by tolerance)")
    ax2.axhline(1.0, color="k", lw=1)
    ax2.axhspan(0.1, 10.0, color="g", alpha=0.08, label="[0.1, 10]")
    ax2.set_xlabel("iterations m")
    ax2.set_title("Calibration over 20 right-hand sides b = A x*, x* ~ N(0, I)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures", "linear_solver_uncertainty.png")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"BayesCG RMS(error)/RMS(std) at m = 10, 30, 60: {[round(float(ratio_bcg[m - 1]), 2) for m in (10, 30, 60)]}")
    print(f"BayesCG S-statistic ratio at m = 10, 30, 60: {[round(float(s_ratio[m - 1]), 2) for m in (10, 30, 60)]}")
    print("problinsolve (mean iterations, RMS(error)/RMS(std)): "
          f"{[(round(float(k), 1), round(float(r), 2)) for k, r in zip(pls_mean_iterations[::4], ratio_pls[::4])]}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
