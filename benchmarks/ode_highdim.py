"""Scale benchmark: probabilistic ODE solvers on semi-discretised PDEs with d = 10^3 ... 10^6.

Two problems on an ``N x N`` periodic grid (5-point Laplacian, ``jnp.roll``, no
matrix anywhere):

* **FitzHugh-Nagumo reaction-diffusion** (two species, ``d = 2 N^2``):
  ``u' = D_u Lap u + u - u^3 - v + k``, ``v' = D_v Lap v + (u - v) / tau``
  (the Turing-pattern setting of e.g. Krämer, Bosch, Schmidt & Hennig 2022,
  "Probabilistic ODE solutions in millions of dimensions", ICML). Used for
  time per step and memory against ``d``.
* **the heat equation** ``y' = D Lap y`` (``d = N^2``) from a smooth mode plus
  noise in every mode, mildly stiff (largest eigenvalue ``8 D / h^2 ~ 160``): a
  whole adaptive solve on ``[0, 1]`` at ``d ~ 2 * 10^5``, which must take well
  under a minute on a CPU; the error is measured against the exact solution
  (the discrete Laplacian is diagonal in the Fourier basis).

Contestants: probnum_jax ``EK0`` with the isotropic (``O(d q)`` memory,
``O(d q + q^3)`` time per step) and block-diagonal (``O(d q^2)`` memory,
``O(d q^3)`` time) factorisations, ``q = 2``, and diffrax ``Tsit5``.

Per ``d`` the script records the time per step of a fixed-grid solve (after
compilation; ``ode.solve_fixed_grid`` and diffrax with ``ConstantStepSize``,
the same number of steps), the time per vector-field evaluation (EK0 evaluates
the field once per step, Tsit5 six times), the compile time, and XLA's memory
estimate of the compiled program (arguments + outputs + temporaries). The
scaling exponent is the slope of ``log(time per step)`` against ``log(d)`` over
the larger sizes. Writes ``ode_highdim.json`` and ``ode_highdim.png``.

Run::

    python benchmarks/ode_highdim.py            # d up to ~2 * 10^6
    python benchmarks/ode_highdim.py --quick    # d up to ~1.3 * 10^5
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import probnum_jax as pnx  # noqa: E402

from _common import machine_info, memory_bytes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def laplacian(u, h):
    return (jnp.roll(u, 1, 0) + jnp.roll(u, -1, 0) + jnp.roll(u, 1, 1) + jnp.roll(u, -1, 1) - 4 * u) / h**2


def fitzhugh_nagumo_pde(n):
    """The vector field and a random initial value of 2-D FitzHugh-Nagumo on an ``n x n`` grid of [0, 1]^2."""
    h, du, dv, tau, k = 1.0 / n, 1e-4, 5e-3, 0.1, 0.0

    def f(t, y, args):
        u, v = y[: n * n].reshape(n, n), y[n * n :].reshape(n, n)
        du_dt = du * laplacian(u, h) + u - u**3 - v + k
        dv_dt = (dv * laplacian(v, h) + u - v) / tau
        return jnp.concatenate([du_dt.reshape(-1), dv_dt.reshape(-1)])

    y0 = jax.random.uniform(jax.random.key(0), (2 * n * n,), minval=-0.1, maxval=0.1)
    return f, y0


def heat(n, diffusivity=1e-4):
    h = 1.0 / n

    def f(t, y, args):
        return diffusivity * laplacian(y.reshape(n, n), h).reshape(-1)

    x = (jnp.arange(n) + 0.5) * h
    smooth = jnp.sin(2 * jnp.pi * x)[:, None] * jnp.cos(2 * jnp.pi * x)[None, :]
    rough = 0.1 * jax.random.normal(jax.random.key(1), (n, n))  # excites every mode, the stiff ones too
    y0 = (smooth + rough).reshape(-1)

    def solution(t):
        """Exact: the periodic 5-point Laplacian is diagonal in the 2-D discrete Fourier basis."""
        k = 2 * np.cos(2 * np.pi * np.arange(n) / n) - 2
        rates = diffusivity * (k[:, None] + k[None, :]) / h**2
        modes = np.fft.fft2(np.asarray(y0).reshape(n, n)) * np.exp(rates * t)
        return np.real(np.fft.ifft2(modes)).reshape(-1)

    return f, y0, 8 * diffusivity / h**2, solution


def timed(fn, *args, repeats):
    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return min(times), compile_s, memory_bytes(compiled)


def per_step(n, num_steps, repeats):
    f, y0 = fitzhugh_nagumo_pde(n)
    d = y0.shape[0]
    dt = 1e-3
    grid = jnp.linspace(0.0, dt * num_steps, num_steps + 1)
    rows = []
    for name in ("isotropic", "blockdiag"):
        solver = pnx.ode.EK0(num_derivatives=2, factorisation=name)
        run = lambda y: pnx.ode.solve_fixed_grid(f, y, grid, solver=solver).mean[-1]  # noqa: E731
        t, c, m = timed(run, y0, repeats=repeats)
        rows.append(dict(solver=f"EK0-{name}", d=d, time_per_step=t / num_steps,
                         time_per_f_eval=t / num_steps, compile_s=c, memory_bytes=m))
    term, tsit5 = diffrax.ODETerm(f), diffrax.Tsit5()

    def run_tsit5(y):
        sol = diffrax.diffeqsolve(term, tsit5, t0=0.0, t1=dt * num_steps, dt0=dt, y0=y,
                                  stepsize_controller=diffrax.ConstantStepSize(), max_steps=num_steps + 1)
        return sol.ys[-1]

    t, c, m = timed(run_tsit5, y0, repeats=repeats)
    rows.append(dict(solver="diffrax-Tsit5", d=d, time_per_step=t / num_steps,
                     time_per_f_eval=t / (6 * num_steps), compile_s=c, memory_bytes=m))
    return rows


def adaptive_heat(n, tol):
    f, y0, stiffness, solution = heat(n)
    out = dict(d=int(y0.shape[0]), largest_eigenvalue=float(stiffness), tol=tol)
    solver = pnx.ode.EK0(num_derivatives=2)

    def run_ek0(y):
        sol = pnx.ode.solve(f, y, t0=0.0, t1=1.0, solver=solver, atol=tol, rtol=tol, max_steps=20_000)
        return sol.mean[-1], sol.std[-1], sol.num_steps, sol.num_rejected

    def run_tsit5(y):
        sol = diffrax.diffeqsolve(diffrax.ODETerm(f), diffrax.Tsit5(), t0=0.0, t1=1.0, dt0=None, y0=y,
                                  stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol),
                                  max_steps=20_000)
        return sol.ys[-1], sol.stats["num_steps"]

    exact = solution(1.0)
    for name, fn in (("EK0-isotropic", run_ek0), ("diffrax-Tsit5", run_tsit5)):
        t0 = time.perf_counter()
        res = jax.block_until_ready(jax.jit(fn)(y0))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = jax.block_until_ready(jax.jit(fn)(y0))
        second = time.perf_counter() - t0
        err = float(jnp.sqrt(jnp.mean((res[0] - exact) ** 2)))
        entry = dict(first_call_s=first, run_s=second, rms_error=err, num_steps=int(res[-1] if name.startswith("diffrax") else res[2]))
        if name.startswith("EK0"):
            entry["rms_std"] = float(jnp.sqrt(jnp.mean(res[1] ** 2)))
            entry["num_rejected"] = int(res[3])
        out[name] = entry
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    sizes = [16, 32, 64, 128, 256] if args.quick else [16, 32, 64, 128, 256, 512, 1024]
    num_steps, repeats = (5, 2) if args.quick else (10, 3)
    rows = []
    for n in sizes:
        new = per_step(n, num_steps, repeats)
        for r in new:
            print(f"d={r['d']:>8} {r['solver']:<16} {1e3 * r['time_per_step']:9.3f} ms/step  "
                  f"compile {r['compile_s']:5.1f} s  memory {r['memory_bytes'] / 1e6 if r['memory_bytes'] else float('nan'):9.1f} MB",
                  flush=True)
        rows += new
    exponents = {}
    for solver in sorted({r["solver"] for r in rows}):
        pts = [(r["d"], r["time_per_step"]) for r in rows if r["solver"] == solver and r["d"] >= 2 * 64**2]
        d, t = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
        exponents[solver] = float(np.polyfit(d, t, 1)[0])
        mem = [(r["d"], r["memory_bytes"]) for r in rows if r["solver"] == solver and r["memory_bytes"]]
        if len(mem) > 2:
            md, mm = np.log([p[0] for p in mem[2:]]), np.log([p[1] for p in mem[2:]])
            exponents[solver + " (memory)"] = float(np.polyfit(md, mm, 1)[0])
    print("scaling exponents (time per step ~ d^k):", exponents)
    heat_n = 448  # d = 200,704
    adaptive = adaptive_heat(heat_n, tol=1e-4)
    print("adaptive heat equation:", adaptive)
    d_max = max(r["d"] for r in rows)
    at_max = {r["solver"]: r for r in rows if r["d"] == d_max}
    tsit5 = at_max["diffrax-Tsit5"]
    ratios = {}
    for solver in ("EK0-isotropic", "EK0-blockdiag"):
        ratios[f"{solver} / Tsit5, time per step, d={d_max}"] = at_max[solver]["time_per_step"] / tsit5["time_per_step"]
        ratios[f"{solver} / Tsit5, time per f-eval, d={d_max}"] = (
            at_max[solver]["time_per_f_eval"] / tsit5["time_per_f_eval"]
        )
    print("ratios:", ratios)
    result = dict(
        benchmark="ode_highdim", date=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=machine_info(),
        settings=dict(quick=args.quick, sizes=sizes, num_steps=num_steps, repeats=repeats, num_derivatives=2),
        per_step=rows, scaling_exponents=exponents, adaptive_heat=adaptive, ratios=ratios,
    )
    os.makedirs(args.out, exist_ok=True)
    stem = "ode_highdim_quick" if args.quick else "ode_highdim"
    with open(os.path.join(args.out, stem + ".json"), "w") as fh:
        json.dump(result, fh, indent=2)
    plot(rows, exponents, os.path.join(args.out, stem + ".png"))


def plot(rows, exponents, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for solver in sorted({r["solver"] for r in rows}):
        rs = [r for r in rows if r["solver"] == solver]
        d = [r["d"] for r in rs]
        label = f"{solver} (slope {exponents.get(solver, float('nan')):.2f})"
        axes[0].loglog(d, [r["time_per_step"] for r in rs], "o-", label=label)
        if all(r["memory_bytes"] for r in rs):
            axes[1].loglog(d, [r["memory_bytes"] / 1e6 for r in rs], "o-", label=solver)
    axes[0].set(xlabel="dimension d", ylabel="time per step [s]", title="FitzHugh-Nagumo PDE: time per step")
    axes[1].set(xlabel="dimension d", ylabel="XLA memory estimate [MB]", title="memory of the compiled solve")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
