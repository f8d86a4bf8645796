"""Linear-solver benchmark: probnum_jax BayesCG / problinsolve against CG in JAX, lineax, SciPy and probnum.

One run solves the same symmetric positive-definite systems with every
contestant to ``||b - A x|| <= 1e-6 ||b||`` and records, per (problem,
contestant): the run time after compilation (best of 7 rounds, the contestants
timed round-robin within each round so that they share the machine's load), the
compile time (``jit(...).lower(...).compile()``), XLA's buffer estimate (JAX) or
the ``tracemalloc`` peak (NumPy-based peers), the iteration count, the final
relative error against a direct solve, and, for the probabilistic solvers, the
calibration statistics of :func:`probnum_jax.linalg.calibration_statistics`
(RMS(error)/RMS(std), the S-statistic ratio ``||e||_A^2 / E||X - mu||_A^2`` and
the Z-statistic against its ``chi^2`` mean), at convergence and for an
early-stopped BayesCG solve (a quarter of the iterations). It writes
``linsolve.json`` and ``linsolve.png`` to ``--out`` (default
``benchmarks/results``).

Run it with::

    pip install -e ".[bench]" && python benchmarks/linsolve.py
    python benchmarks/linsolve.py --quick        # 3 instead of 7 timing rounds
    python benchmarks/linsolve.py --out /tmp/ls  # another output folder

Problems: random SPD matrices (eigenvalues log-spaced in [1, 1e3]) with
n = 200 and 1000; the 2-D Poisson finite-difference matvec on 64^2 and 256^2
grids; an RBF Gram matrix (2000 random points in the unit square, lengthscale
0.1, nugget 1e-2). Contestants:

* ``bayescg``: :func:`probnum_jax.linalg.bayescg` (5 post-iterations);
* ``problinsolve``: :func:`probnum_jax.linalg.problinsolve`, matrix-based
  belief, CG policy, ``maxiter`` the next power of two above 1.5x CG's count
  (it sizes the ``O(n maxiter)`` buffers); not run on the 256^2 grid (3 GB of
  buffers);
* ``jax_cg``: ``jax.scipy.sparse.linalg.cg``; ``jax_cg_same_matvecs`` runs it
  for exactly as many iterations as BayesCG's iterations plus post-iterations;
* ``lineax_cg``: ``lineax.CG`` with the RMS norm and ``atol = 1e-6 ||b|| /
  sqrt(n)`` (the same residual criterion; lineax also checks the step size);
* ``scipy_cg``: ``scipy.sparse.linalg.cg`` (dense array or CSR matrix);
* ``probnum_problinsolve`` and ``probnum_bayescg`` (probnum 0.1.25's
  ``problinsolve`` and modular ``BayesCG`` with prior ``x ~ N(0, I)``), run
  once each, only for n <= 1000: their cost grows like ``O(k n^2)`` with
  Python-level operator algebra. probnum predates NumPy 2, so two removed
  NumPy aliases are restored before importing it.

References: J. Cockayne et al., "A Bayesian conjugate gradient method",
Bayesian Analysis 2019; T. W. Reid et al., "Statistical properties of BayesCG
under the Krylov prior", Numer. Math. 2023; J. Wenger & P. Hennig,
"Probabilistic linear solvers for machine learning", NeurIPS 2020.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # threaded LAPACK thrashes on shared cores

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402
from importlib import metadata  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.sparse  # noqa: E402
import scipy.sparse.linalg  # noqa: E402

from probnum_jax import linalg  # noqa: E402
from probnum_jax.problems._linear_systems import poisson_2d_matvec, random_spd_matrix, rbf_gram_matrix  # noqa: E402

RTOL = 1e-6
POST_ITERATIONS = 5


# ----------------------------------------------------------------------------- problems


def _poisson_csr(m):
    h = 1.0 / (m + 1)
    T = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    eye = scipy.sparse.eye(m)
    return ((scipy.sparse.kron(eye, T) + scipy.sparse.kron(T, eye)) / h**2).tocsr()


def make_problems():
    rng = np.random.default_rng(0)
    problems = []
    for n in (200, 1000):
        A = random_spd_matrix(jax.random.key(n), jnp.logspace(0, 3, n))
        problems.append(dict(name=f"random_spd_{n}", n=n, A=A, A_np=np.asarray(A), dense=True))
    for m in (64, 256):
        csr = _poisson_csr(m)
        problems.append(dict(name=f"poisson_{m}x{m}", n=m * m, A=poisson_2d_matvec(m), A_np=csr, dense=False))
    points = jnp.asarray(rng.uniform(size=(2000, 2)))
    K = rbf_gram_matrix(points, lengthscale=0.1, nugget=1e-2)
    problems.append(dict(name="rbf_gram_2000", n=2000, A=K, A_np=np.asarray(K), dense=True))
    for p in problems:
        b = rng.standard_normal(p["n"])
        p["b"] = jnp.asarray(b)
        if p["dense"]:
            p["x_ref"] = scipy.linalg.solve(p["A_np"], b, assume_a="pos")
        else:
            p["x_ref"] = scipy.sparse.linalg.spsolve(p["A_np"].tocsc(), b)
    return problems


def _matvec(p):
    return (lambda v: p["A"] @ v) if p["dense"] else p["A"]


# ----------------------------------------------------------------------------- timing helpers


def _memory_bytes(compiled):
    try:
        m = compiled.memory_analysis()
        return int(m.temp_size_in_bytes + m.output_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def compile_jax(fn, args):
    """Compile ``jit(fn)`` for ``args``; return (compiled, compile_s, memory, output)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    return compiled, compile_s, _memory_bytes(compiled), jax.block_until_ready(compiled(*args))


def interleaved_times(runners, repeats):
    """Best-of-``repeats`` wall time of each runner, timed round-robin so that all see the same load."""
    best = {name: math.inf for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            t0 = time.perf_counter()
            jax.block_until_ready(run())
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def time_numpy(fn, repeats):
    runs, out, peak = [], None, None
    for i in range(repeats):
        if i == 0:
            tracemalloc.start()
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
        if i == 0:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    return out, min(runs), peak


def rel_error(x, x_ref):
    return float(np.linalg.norm(np.asarray(x) - x_ref) / np.linalg.norm(x_ref))


# ----------------------------------------------------------------------------- contestants


def run_jax_contestants(p, repeats):
    rows = {}
    A, b, n = p["A"], p["b"], p["n"]
    dense = p["dense"]
    op_A = (lambda A: A) if dense else (lambda A: p["A"])
    args = (A, b) if dense else (jnp.zeros(()), b)
    compiled = {}

    def bayescg(A, b):
        return linalg.bayescg(op_A(A), b, atol=0.0, rtol=RTOL, maxiter=10 * n, throw=False)

    compiled["bayescg"] = compile_jax(bayescg, args)
    res = compiled["bayescg"][3]
    m = int(res.num_iterations)
    rows["bayescg"] = dict(iterations=m, matvecs=m + POST_ITERATIONS + 2, error=rel_error(res.mean, p["x_ref"]),
                           converged=bool(res.converged), calibration=calibration(res, p, full=True))
    # Early-stopped BayesCG: a quarter of the iterations.
    early = jax.jit(lambda A, b: linalg.bayescg(op_A(A), b, atol=0.0, rtol=0.0, maxiter=max(m // 4, 1),
                                                throw=False))(*args)
    rows["bayescg"]["early_stopped"] = dict(iterations=int(early.num_iterations),
                                            error=rel_error(early.mean, p["x_ref"]),
                                            calibration=calibration(early, p, full=True))

    def cg(A, b):
        return jax.scipy.sparse.linalg.cg(op_A(A), b, tol=RTOL, atol=0.0, maxiter=10 * n)[0]

    def cg_same(A, b):
        return jax.scipy.sparse.linalg.cg(op_A(A), b, tol=0.0, atol=0.0, maxiter=m + POST_ITERATIONS)[0]

    compiled["jax_cg"] = compile_jax(cg, args)
    compiled["jax_cg_same_matvecs"] = compile_jax(cg_same, args)
    iters_cg = _count_cg_iterations(p)
    rows["jax_cg"] = dict(iterations=iters_cg, error=rel_error(compiled["jax_cg"][3], p["x_ref"]))
    rows["jax_cg_same_matvecs"] = dict(iterations=m + POST_ITERATIONS,
                                       error=rel_error(compiled["jax_cg_same_matvecs"][3], p["x_ref"]))

    def lineax_cg(A, b):
        op = (lx.MatrixLinearOperator(A, lx.positive_semidefinite_tag) if dense else
              lx.FunctionLinearOperator(p["A"], jax.ShapeDtypeStruct((n,), b.dtype), lx.positive_semidefinite_tag))
        solver = lx.CG(rtol=0.0, atol=RTOL * jnp.linalg.norm(b) / math.sqrt(n),
                       norm=lambda r: jnp.sqrt(jnp.mean(r**2)), max_steps=10 * n)
        sol = lx.linear_solve(op, b, solver, throw=False)
        return sol.value, sol.stats["num_steps"]

    compiled["lineax_cg"] = compile_jax(lineax_cg, args)
    x, steps = compiled["lineax_cg"][3]
    rows["lineax_cg"] = dict(iterations=int(steps), error=rel_error(x, p["x_ref"]))

    if p["name"] == "poisson_256x256":
        rows["problinsolve"] = dict(skipped="O(n maxiter) buffers: ~3 GB at n = 65536 with maxiter = 2048")
    else:
        maxiter = min(n, 2 ** math.ceil(math.log2(1.5 * max(iters_cg, 8))))

        def pls(A, b):
            return linalg.problinsolve(op_A(A), b, atol=0.0, rtol=RTOL, maxiter=maxiter, throw=False)

        compiled["problinsolve"] = compile_jax(pls, args)
        res = compiled["problinsolve"][3]
        rows["problinsolve"] = dict(maxiter=maxiter, iterations=int(res.num_iterations),
                                    error=rel_error(res.mean, p["x_ref"]), converged=bool(res.converged),
                                    calibration=calibration(res, p, full=n <= 1000))

    scipy_count = [0]

    def scipy_cg():
        scipy_count[0] = 0
        return scipy.sparse.linalg.cg(p["A_np"], np.asarray(b), rtol=RTOL, atol=0.0, maxiter=10 * n,
                                      callback=lambda _: scipy_count.__setitem__(0, scipy_count[0] + 1))[0]

    tracemalloc.start()
    x_scipy = scipy_cg()
    scipy_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    runners = {name: (lambda c=c: c[0](*args)) for name, c in compiled.items()}
    runners["scipy_cg"] = scipy_cg
    best = interleaved_times(runners, repeats)
    for name, (_, compile_s, memory, _) in compiled.items():
        rows[name].update(time_s=best[name], compile_s=compile_s, memory_bytes=memory)
    rows["scipy_cg"] = dict(time_s=best["scipy_cg"], memory_bytes=scipy_peak, iterations=scipy_count[0],
                            error=rel_error(x_scipy, p["x_ref"]))
    return rows


def _count_cg_iterations(p):
    """jax's cg reports no iteration count: count SciPy's (same recurrences, same criterion)."""
    count = [0]
    scipy.sparse.linalg.cg(p["A_np"], np.asarray(p["b"]), rtol=RTOL, atol=0.0, maxiter=10 * p["n"],
                           callback=lambda _: count.__setitem__(0, count[0] + 1))
    return count[0]


def calibration(res, p, full):
    err = p["x_ref"] - np.asarray(res.mean)
    std = np.asarray(res.std)
    out = dict(rms_error_over_std=float(np.sqrt(np.mean(err**2)) / max(np.sqrt(np.mean(std**2)), 1e-300)))
    if full:
        stats = linalg.calibration_statistics(res, _matvec(p), jnp.asarray(p["x_ref"]))
        out.update(z=float(stats.z), z_mean=float(stats.z_mean), s=float(stats.s), s_mean=float(stats.s_mean),
                   s_over_mean=float(stats.s / stats.s_mean) if float(stats.s_mean) > 0 else None)
    return out


def run_probnum(p):
    np.float_ = np.float64  # probnum 0.1.25 predates NumPy 2: restore two removed aliases
    np.find_common_type = lambda array_types, scalar_types: np.result_type(*array_types, *scalar_types)
    from probnum import randvars
    from probnum.linalg import problinsolve
    from probnum.linalg.solvers import BayesCG, beliefs, stopping_criteria
    from probnum.problems import LinearSystem

    A, b, n = p["A_np"], np.asarray(p["b"]), p["n"]
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (x, _, _, info), run, peak = time_numpy(lambda: problinsolve(A, b, atol=0.0, rtol=RTOL, maxiter=10 * n), 1)
    rows["probnum_problinsolve"] = dict(time_s=run, memory_bytes=peak, iterations=int(info["iter"]),
                                        error=rel_error(x.mean, p["x_ref"]))
    prior = beliefs.LinearSystemBelief(x=randvars.Normal(mean=np.zeros(n), cov=np.eye(n)))
    stop = (stopping_criteria.MaxIterationsStoppingCriterion(maxiter=10 * n)
            | stopping_criteria.ResidualNormStoppingCriterion(atol=0.0, rtol=RTOL))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (belief, state), run, peak = time_numpy(
            lambda: BayesCG(stopping_criterion=stop).solve(prior=prior, problem=LinearSystem(A=A, b=b)), 1)
    rows["probnum_bayescg"] = dict(time_s=run, memory_bytes=peak, iterations=int(state.step),
                                   error=rel_error(belief.x.mean, p["x_ref"]))
    return rows


# ----------------------------------------------------------------------------- driver


def summarise(results):
    ratios = []
    for name, rows in results.items():
        b, cg = rows.get("bayescg"), rows.get("jax_cg")
        if b and cg:
            ratios.append(dict(problem=name, ratio="bayescg / jax_cg time (same tolerance)",
                               value=b["time_s"] / cg["time_s"], target=1.3,
                               target_met=b["time_s"] / cg["time_s"] <= 1.3))
            same = rows["jax_cg_same_matvecs"]
            ratios.append(dict(problem=name, ratio="bayescg / jax_cg time (same matvecs)",
                               value=b["time_s"] / same["time_s"], target=1.3,
                               target_met=b["time_s"] / same["time_s"] <= 1.3))
            ratios.append(dict(problem=name, ratio="bayescg / jax_cg compile time",
                               value=b["compile_s"] / cg["compile_s"]))
            if b.get("memory_bytes") and cg.get("memory_bytes"):
                ratios.append(dict(problem=name, ratio="bayescg / jax_cg XLA memory",
                                   value=b["memory_bytes"] / cg["memory_bytes"]))
        for peer in ("probnum_problinsolve", "probnum_bayescg"):
            if b and peer in rows:
                speedup = rows[peer]["time_s"] / b["time_s"]
                entry = dict(problem=name, ratio=f"{peer} / bayescg time", value=speedup)
                if name == "random_spd_1000":
                    entry.update(target=50.0, target_met=speedup >= 50.0)
                ratios.append(entry)
            pls = rows.get("problinsolve")
            if pls and "time_s" in pls and peer == "probnum_problinsolve" and peer in rows:
                ratios.append(dict(problem=name, ratio="probnum_problinsolve / problinsolve time",
                                   value=rows[peer]["time_s"] / pls["time_s"]))
    return ratios


def plot(results, path):
    contestants = ["bayescg", "problinsolve", "jax_cg", "lineax_cg", "scipy_cg", "probnum_problinsolve",
                   "probnum_bayescg"]
    colors = dict(zip(contestants, plt.cm.tab10.colors))
    names = list(results)
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    ax = axes[0]
    width = 0.8 / len(contestants)
    for j, c in enumerate(contestants):
        xs, ys = [], []
        for i, name in enumerate(names):
            row = results[name].get(c)
            if row and "time_s" in row:
                xs.append(i + (j - len(contestants) / 2) * width + width / 2)
                ys.append(row["time_s"])
        ax.bar(xs, ys, width, label=c, color=colors[c])
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
    ax.set_ylabel("wall time to ||r|| <= 1e-6 ||b|| [s] (best of repeats)")
    ax.set_title("Time to tolerance (after compilation)")
    ax.legend(fontsize=7)
    ax = axes[1]
    r1 = [results[n]["bayescg"]["time_s"] / results[n]["jax_cg"]["time_s"] for n in names]
    r2 = [results[n]["bayescg"]["time_s"] / results[n]["jax_cg_same_matvecs"]["time_s"] for n in names]
    ax.bar(np.arange(len(names)) - 0.2, r1, 0.4, label="same tolerance")
    ax.bar(np.arange(len(names)) + 0.2, r2, 0.4, label="same number of matvecs")
    ax.axhline(1.3, color="k", ls="--", lw=1, label="target 1.3")
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
    ax.set_ylabel("bayescg time / jax.scipy cg time")
    ax.set_title("BayesCG overhead over plain CG")
    ax.legend(fontsize=8)
    ax = axes[2]
    for j, (c, key) in enumerate((("bayescg", "converged"), ("bayescg", "early"), ("problinsolve", "converged"))):
        vals = []
        for name in names:
            row = results[name].get(c, {})
            cal = row.get("early_stopped", {}).get("calibration") if key == "early" else row.get("calibration")
            vals.append(cal["rms_error_over_std"] if cal else np.nan)
        ax.bar(np.arange(len(names)) + (j - 1) * 0.27, vals, 0.27, label=f"{c} ({key})")
    ax.axhline(1.0, color="k", lw=1)
    ax.axhspan(0.1, 10, color="g", alpha=0.08, label="[0.1, 10]")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
    ax.set_ylabel("RMS(error) / RMS(posterior std)")
    ax.set_title("Calibration (1 = calibrated, > 1 overconfident)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 instead of 7 timing rounds")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    results = {}
    for p in make_problems():
        t0 = time.perf_counter()
        rows = run_jax_contestants(p, repeats)
        if p["n"] <= 1000:
            rows.update(run_probnum(p))
        else:
            reason = "probnum's cost grows like O(k n^2) with Python-level operator algebra: skipped for n > 1000"
            rows["probnum_problinsolve"] = dict(skipped=reason)
            rows["probnum_bayescg"] = dict(skipped=reason)
        results[p["name"]] = rows
        print(f"{p['name']:>16s} ({time.perf_counter() - t0:5.1f}s): " + ", ".join(
            f"{c} {r['time_s'] * 1e3:.1f}ms/{r.get('iterations')}it/err {r['error']:.1e}"
            for c, r in rows.items() if "time_s" in r), flush=True)
    # drop un-serialisable entries and skipped placeholders from the plot input
    plot_input = {n: {c: r for c, r in rows.items() if "time_s" in r} for n, rows in results.items()}
    summary = summarise(plot_input)
    for s in summary:
        print(f"  {s['problem']:>16s}  {s['ratio']:<45s} {s['value']:8.3f}"
              + (f"  (target {s['target']}, met: {s['target_met']})" if "target" in s else ""))
    payload = dict(
        benchmark="linsolve",
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        quick=args.quick,
        rtol=RTOL,
        machine=dict(platform=platform.platform(), python=platform.python_version(), cpu_count=os.cpu_count(),
                     jax_backend=jax.default_backend(), devices=[str(d) for d in jax.devices()],
                     load_average=os.getloadavg()),
        versions={pkg: metadata.version(pkg) for pkg in ("jax", "lineax", "scipy", "numpy", "probnum")},
        runtime_s=time.perf_counter() - started,
        results=results,
        summary=dict(ratios=summary),
    )
    with open(os.path.join(args.out, "linsolve.json"), "w") as f:
        json.dump(payload, f, indent=1)
    plot(plot_input, os.path.join(args.out, "linsolve.png"))
    print(f"wrote {args.out}/linsolve.json and linsolve.png in {payload['runtime_s']:.0f}s")


if __name__ == "__main__":
    main()
