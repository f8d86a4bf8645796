"""Bayesian quadrature benchmark: probnum_jax.quad against probnum, emukit, Monte Carlo and QMC.

One run integrates random instances of the Genz Gaussian-peak, oscillatory and
product-peak families on ``[0, 1]^d`` for ``d = 1 ... 5`` with ``n = 8 ... 256``
nodes and records, per (family, d, n, instance) and contestant: the absolute
error against the closed-form integral, the reported standard deviation (for the
probabilistic methods) and the run time. It writes ``bq.json`` and ``bq.png`` to
``--out`` (default ``benchmarks/results``).

Run it with::

    pip install -e ".[bench]" emukit GPy && python benchmarks/bq.py
    python benchmarks/bq.py --quick            # fewer n, instances and loop iterations
    python benchmarks/bq.py --out /tmp/bq      # another output folder

Contestants (all Bayesian-quadrature methods get the *same* nodes: the first n
points of one scrambled Sobol sequence per instance):

* ``ours``: ``quad.fit_kernel`` (ML-II of ARD lengthscales and output scale) then
  ``quad.bayesquad_from_data`` with the ExpQuad kernel, jit-compiled per (n, d) and
  vmapped over instances; time = batch time / batch size after compilation;
* ``probnum``: ``probnum.quad.bayesquad_from_data`` with its ExpQuad kernel (it cannot
  learn lengthscales; it estimates the output scale), lengthscale 1 (its default);
  ``probnum_ours_ls`` is the same call given *our* fitted lengthscales (isotropic
  mean of the ARD ones, since its kernel takes one per dimension too), which
  isolates the numerics from the hyperparameters;
* ``emukit``: ``VanillaBayesianQuadrature`` on a GPy RBF-ARD model whose
  hyperparameters GPy optimises (noise fixed at 1e-10), for ``n <= --emukit-max-n``;
* ``mc``: plain Monte Carlo with the CLT standard error;
* ``qmc``: the same scrambled Sobol points, equal weights (scipy ``qmc.Sobol``), also
  at ``n = 1024`` for the target "BQ at 64 beats QMC at 1024".

Adaptive loops: ``quad.bayesquad(policy="ivr")`` against emukit's
``VanillaBayesianQuadratureLoop`` (integral-variance reduction, GPy refit every
iteration) on the same 2-d Gaussian-peak instance, timed per iteration.

References: A. Genz, "Testing multidimensional integration routines" (1984);
Briol et al., "Probabilistic integration: a role in statistical computation?"
(Statistical Science, 2019); Gessner et al., "Active multi-information source
Bayesian quadrature" (UAI 2019).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # threaded BLAS thrashes on shared cores

import argparse  # noqa: E402
import datetime  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402
from importlib import metadata  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import qmc  # noqa: E402

from probnum_jax import quad  # noqa: E402
from probnum_jax.problems._genz import genz_random  # noqa: E402

FAMILIES = ("gaussian_peak", "oscillatory", "product_peak")
DIMS = (1, 2, 3, 4, 5)
QMC_BIG = 1024
IVR_N = 64


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# -- problems and nodes --------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("family", "d", "num"))
def _instances(family, d, num, seed):
    keys = jax.random.split(jax.random.key(seed), num)
    problems = jax.vmap(lambda k: genz_random(family, key=k, dim=d))(keys)
    return problems, jax.vmap(lambda p: p.solution)(problems)


@functools.partial(jax.jit, static_argnames=("family",))
def _evaluate(family, a, u, x):
    """Integrand values ``[R, N]`` of instances (a, u) ``[R, d]`` at points ``x [R, N, d]``."""
    from probnum_jax.problems._genz import GenzProblem

    return jax.vmap(lambda a, u, x: jax.vmap(GenzProblem(family=family, a=a, u=u).integrand)(x))(a, u, x)


def _nodes(d, num_instances, num_points, seed):
    """Scrambled Sobol points (prefixes are the n-node designs) and iid uniform points."""
    sobol = np.stack([qmc.Sobol(d, scramble=True, seed=seed + i).random(num_points) for i in range(num_instances)])
    iid = np.random.default_rng(seed).uniform(size=(num_instances, num_points, d))
    return sobol, iid


# -- contestants ---------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _ours_fn(n, d):
    measure = quad.LebesgueMeasure(jnp.zeros(d), jnp.ones(d))
    start = quad.ExpQuad(0.5 * jnp.ones(d))

    def one(x, y):
        kernel = quad.fit_kernel(x, y, kernel=start, num_steps=100, lengthscale_bounds=(0.01, 10.0))
        res = quad.bayesquad_from_data(x, y, measure=measure, kernel=kernel, throw=False)
        return res.mean, res.std, kernel.lengthscales, res.result._value

    return jax.jit(jax.vmap(one))


def run_ours(x, y, repeats):
    n, d = x.shape[1:]
    fn = _ours_fn(n, d)
    t0 = time.perf_counter()
    compiled = fn.lower(x, y).compile()
    compile_time = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    temp_bytes = None if mem is None else int(mem.temp_size_in_bytes) // x.shape[0]
    out = jax.block_until_ready(compiled(x, y))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(x, y))
        times.append((time.perf_counter() - t0) / x.shape[0])
    mean, std, ls, result = (np.asarray(o) for o in out)
    return mean, std, ls, result, float(np.median(times)), compile_time, temp_bytes


def _import_probnum():
    """probnum 0.1.25 still uses ``np.Inf`` and ``np.float_``, removed in NumPy 2: restore the aliases."""
    for alias, value in (("Inf", np.inf), ("float_", np.float64)):
        if alias not in np.__dict__:
            setattr(np, alias, value)
    import probnum.quad

    return probnum.quad


def run_probnum(x, y, lengthscale):
    _import_probnum()
    import probnum.quad
    from probnum.randprocs.kernels import ExpQuad

    d = x.shape[1]
    kernel = ExpQuad(input_shape=(d,), lengthscales=lengthscale)
    tracemalloc.start()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        belief, _ = probnum.quad.bayesquad_from_data(x, y, kernel=kernel, domain=(np.zeros(d), np.ones(d)))
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(belief.mean), float(belief.std), elapsed, peak


def _emukit_model(x, y):
    import GPy
    from emukit.model_wrappers.gpy_quadrature_wrappers import BaseGaussianProcessGPy, RBFGPy
    from emukit.quadrature.kernels import QuadratureRBFLebesgueMeasure
    from emukit.quadrature.measures import LebesgueMeasure
    from emukit.quadrature.methods import VanillaBayesianQuadrature

    d = x.shape[1]
    gpy = GPy.models.GPRegression(x, y[:, None], kernel=GPy.kern.RBF(input_dim=d, ARD=True, lengthscale=0.5))
    gpy.likelihood.variance.constrain_fixed(1e-10, warning=False)
    measure = LebesgueMeasure.from_bounds([(0.0, 1.0)] * d)
    kernel = QuadratureRBFLebesgueMeasure(RBFGPy(gpy.kern), measure)
    return VanillaBayesianQuadrature(base_gp=BaseGaussianProcessGPy(kern=kernel, gpy_model=gpy), X=x, Y=y[:, None])


def run_emukit(x, y):
    tracemalloc.start()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _emukit_model(x, y)
        model.optimize()
        mean, var = model.integrate()
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(mean), float(np.sqrt(max(var, 0.0))), elapsed, peak


# -- adaptive loops ------------------------------------------------------------------


def adaptive_timing(problem, solution, num_initial, ours_iterations, emukit_iterations, have_emukit):
    d = problem.dim
    measure = quad.LebesgueMeasure(jnp.zeros(d), jnp.ones(d))
    total = num_initial + ours_iterations
    run = jax.jit(
        lambda key: quad.bayesquad(problem, measure=measure, num_evals=total, policy="ivr", num_initial=num_initial, key=key)
    )
    t0 = time.perf_counter()
    compiled = run.lower(jax.random.key(0)).compile()
    compile_time = time.perf_counter() - t0
    jax.block_until_ready(compiled(jax.random.key(0)))
    times = []
    for seed in (1, 2, 3):
        t0 = time.perf_counter()
        res = jax.block_until_ready(compiled(jax.random.key(seed)))
        times.append(time.perf_counter() - t0)
    out = {
        "ours": {
            "iterations": ours_iterations,
            "num_initial": num_initial,
            "time_per_iteration_s": float(np.median(times)) / ours_iterations,
            "compile_s": compile_time,
            "error": abs(float(res.mean) - solution),
            "std": float(res.std),
        }
    }
    if have_emukit:
        from emukit.core.loop import FixedIterationsStoppingCondition, UserFunctionWrapper
        from emukit.quadrature.loop import VanillaBayesianQuadratureLoop

        f = jax.jit(jax.vmap(problem.integrand))
        x0 = qmc.Sobol(d, scramble=True, seed=0).random(num_initial)
        y0 = np.asarray(f(jnp.asarray(x0)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _emukit_model(x0, y0)
            loop = VanillaBayesianQuadratureLoop(model=model)
            user_fn = UserFunctionWrapper(lambda x: np.asarray(f(jnp.asarray(x)))[:, None])
            t0 = time.perf_counter()
            loop.run_loop(user_fn, FixedIterationsStoppingCondition(emukit_iterations))
            elapsed = time.perf_counter() - t0
            mean, var = loop.model.integrate()
        out["emukit"] = {
            "iterations": emukit_iterations,
            "num_initial": num_initial,
            "time_per_iteration_s": elapsed / emukit_iterations,
            "error": abs(float(mean) - solution),
            "std": float(np.sqrt(max(var, 0.0))),
        }
        out["speedup_per_iteration"] = out["emukit"]["time_per_iteration_s"] / out["ours"]["time_per_iteration_s"]
    return out


class _AnyGenz(eqx.Module):
    """A Genz integrand whose family is a traced index, so that one program serves all."""

    index: jax.Array
    a: jax.Array
    u: jax.Array

    def __call__(self, x):
        from probnum_jax.problems._genz import GenzProblem

        branches = [lambda x, f=f: GenzProblem(family=f, a=self.a, u=self.u).integrand(x) for f in FAMILIES]
        return jax.lax.switch(self.index, branches, x)


def run_ours_ivr(d, n, index, a, u):
    """Adaptive BQ (integral-variance reduction, batches of 4 after 16 Sobol nodes), vmapped."""
    measure = quad.LebesgueMeasure(jnp.zeros(d), jnp.ones(d))

    def one(index, a, u, key):
        res = quad.bayesquad(_AnyGenz(index, a, u), measure=measure, num_evals=n, policy="ivr",
                             batch_size=4, num_initial=16, key=key, throw=False)  # fmt: skip
        return res.mean, res.std

    keys = jax.random.split(jax.random.key(d), index.shape[0])
    fn = jax.jit(jax.vmap(one))
    t0 = time.perf_counter()
    compiled = fn.lower(index, a, u, keys).compile()
    compile_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    mean, std = jax.block_until_ready(compiled(index, a, u, keys))
    return np.asarray(mean), np.asarray(std), (time.perf_counter() - t0) / index.shape[0], compile_time


# -- the sweep -----------------------------------------------------------------------


def sweep(ns, num_instances, emukit_max_n, have_emukit, repeats, log):
    records, compile_times, memory = [], {}, {}
    for d in DIMS:
        sobol, iid = _nodes(d, num_instances, QMC_BIG, seed=100 * d)
        data, params = {}, {}
        for family in FAMILIES:
            problems, solutions = _instances(family, d, num_instances, 7 * d + len(family))
            params[family] = (problems.a, problems.u)
            points = jnp.concatenate([jnp.asarray(sobol), jnp.asarray(iid[:, : max(ns)])], axis=1)
            values = np.asarray(_evaluate(family, problems.a, problems.u, points))
            data[family] = (np.asarray(solutions), values[:, :QMC_BIG], values[:, QMC_BIG:])
        for n in ns:
            x = np.repeat(sobol[None, :, :n], len(FAMILIES), axis=0).reshape(-1, n, d)
            y = np.concatenate([data[f][1][:, :n] for f in FAMILIES])
            mean, std, ls, result, per_call, ctime, temp = run_ours(jnp.asarray(x), jnp.asarray(y), repeats)
            compile_times[f"n={n},d={d}"] = ctime
            memory[f"n={n},d={d}"] = temp
            for fi, family in enumerate(FAMILIES):
                solutions, sob_vals, iid_vals = data[family]
                for r in range(num_instances):
                    i = fi * num_instances + r
                    exact = float(solutions[r])
                    base = {"family": family, "d": d, "n": n, "instance": r, "exact": exact}
                    records.append({**base, "method": "ours", "mean": float(mean[i]), "std": float(std[i]),
                                    "time_s": per_call, "ok": bool(result[i] == 0),
                                    "lengthscales": ls[i].tolist()})  # fmt: skip
                    xs, ys = sobol[r, :n], sob_vals[r, :n]
                    m, s, t, peak = run_probnum(xs, ys, 1.0)
                    records.append({**base, "method": "probnum", "mean": m, "std": s, "time_s": t, "peak_bytes": peak})
                    m, s, t, _ = run_probnum(xs, ys, float(np.mean(ls[i])))
                    records.append({**base, "method": "probnum_ours_ls", "mean": m, "std": s, "time_s": t})
                    if have_emukit and n <= emukit_max_n and r < 3:
                        try:
                            m, s, t, peak = run_emukit(xs, ys)
                            records.append({**base, "method": "emukit", "mean": m, "std": s, "time_s": t, "peak_bytes": peak})
                        except Exception as e:  # noqa: BLE001 - recorded, not dropped
                            records.append({**base, "method": "emukit", "failed": f"{type(e).__name__}: {e}"})
                    v = iid_vals[r, :n]
                    records.append({**base, "method": "mc", "mean": float(v.mean()),
                                    "std": float(v.std(ddof=1) / np.sqrt(n))})  # fmt: skip
                    records.append({**base, "method": "qmc", "mean": float(ys.mean())})
                    if n == ns[-1]:
                        records.append({**base, "n": QMC_BIG, "method": "qmc", "mean": float(sob_vals[r].mean())})
            log(f"d={d} n={n}: ours compile {ctime:.1f}s, {per_call * 1e3:.2f} ms/integral")
        if d <= 3 and IVR_N in ns:
            index = jnp.repeat(jnp.arange(len(FAMILIES)), num_instances)
            a = jnp.concatenate([params[f][0] for f in FAMILIES])
            u = jnp.concatenate([params[f][1] for f in FAMILIES])
            mean, std, per_call, ctime = run_ours_ivr(d, IVR_N, index, a, u)
            compile_times[f"ivr,n={IVR_N},d={d}"] = ctime
            for fi, family in enumerate(FAMILIES):
                for r in range(num_instances):
                    i = fi * num_instances + r
                    exact = float(data[family][0][r])
                    records.append({"family": family, "d": d, "n": IVR_N, "instance": r, "exact": exact,
                                    "method": "ours_ivr", "mean": float(mean[i]), "std": float(std[i]),
                                    "time_s": per_call})  # fmt: skip
            log(f"d={d}: adaptive ivr at n={IVR_N}, compile {ctime:.1f}s, {per_call:.2f} s/integral")
    for rec in records:
        if "mean" in rec:
            rec["abs_error"] = abs(rec["mean"] - rec["exact"])
    return records, compile_times, memory


def _median(records, **where):
    vals = [r["abs_error"] for r in records if "abs_error" in r and all(r[k] == v for k, v in where.items())]
    return float(np.median(vals)) if vals else None


def summarise(records, ns, adaptive):
    summary = {}
    # Target 1: BQ with 64 nodes beats Sobol QMC with 1024 on the smooth families, d <= 3.
    cases = []
    for family in FAMILIES:
        for d in (1, 2, 3):
            sob = _median(records, method="ours", family=family, d=d, n=64)
            ivr = _median(records, method="ours_ivr", family=family, d=d, n=64)
            qm = _median(records, method="qmc", family=family, d=d, n=QMC_BIG)
            best = min(e for e in (sob, ivr) if e is not None)
            cases.append({"family": family, "d": d, "ours_sobol_n64": sob, "ours_ivr_n64": ivr, "qmc_n1024": qm,
                          "ours_better": qm is not None and best < qm})  # fmt: skip
    summary["bq64_vs_qmc1024"] = {
        "target": "median |error| of ours (Sobol nodes or adaptive IVR) at n=64 < Sobol QMC at n=1024, smooth families, d <= 3",
        "cases": cases,
        "target_met": all(c["ours_better"] for c in cases),
        "cases_met": f"{sum(c['ours_better'] for c in cases)} of {len(cases)}",
    }
    # Target 3: accuracy at least that of probnum at the same nodes.
    comparisons = {}
    for peer in ("probnum", "probnum_ours_ls", "emukit"):
        rows = []
        for family in FAMILIES:
            for d in DIMS:
                for n in ns:
                    o, p = _median(records, method="ours", family=family, d=d, n=n), _median(records, method=peer, family=family, d=d, n=n)
                    if o is not None and p is not None:
                        rows.append(o <= p * 1.0000001)
        comparisons[peer] = {"cases": len(rows), "ours_at_least_as_accurate": int(sum(rows))}
    summary["accuracy_vs_peers_same_nodes"] = comparisons
    summary["accuracy_vs_probnum"] = {
        "target": "median |error| of ours <= probnum at the same nodes (per family, d, n)",
        "target_met": comparisons["probnum"]["ours_at_least_as_accurate"] == comparisons["probnum"]["cases"],
        **comparisons["probnum"],
    }
    # Calibration: share of |error| <= 2 std.
    calib = {}
    for method in ("ours", "ours_ivr", "probnum", "emukit", "mc"):
        rows = [r for r in records if r.get("method") == method and "std" in r]
        if rows:
            share = float(np.mean([r["abs_error"] <= 2 * r["std"] for r in rows]))
            per_family = {f: float(np.mean([r["abs_error"] <= 2 * r["std"] for r in rows if r["family"] == f])) for f in FAMILIES}
            calib[method] = {"share_within_2std": share, "per_family": per_family, "count": len(rows)}
    summary["calibration"] = calib
    # Time per integral at the same nodes.
    times = {}
    for method in ("ours", "probnum", "emukit"):
        rows = [r["time_s"] for r in records if r.get("method") == method and "time_s" in r]
        if rows:
            times[method] = float(np.median(rows))
    summary["median_time_per_integral_s"] = times
    summary["time_ratios"] = {f"{m}/ours": times[m] / times["ours"] for m in times if m != "ours"}
    if "speedup_per_iteration" in adaptive:
        summary["adaptive_speedup_vs_emukit"] = {
            "target": ">= 10x faster per adaptive iteration than emukit",
            "speedup": adaptive["speedup_per_iteration"],
            "target_met": adaptive["speedup_per_iteration"] >= 10.0,
        }
    return summary


def plot(records, ns, summary, adaptive, path):
    methods = {"ours": "C0", "ours_ivr": "C0", "probnum": "C1", "probnum_ours_ls": "C1", "emukit": "C2", "mc": "C3", "qmc": "C4"}
    fig, axes = plt.subplots(4, 3, figsize=(14, 15))
    for col, family in enumerate(FAMILIES):
        for row, d in enumerate((1, 2, 3, 5)):
            ax = axes[row, col]
            for method, colour in methods.items():
                pts = [(n, _median(records, method=method, family=family, d=d, n=n)) for n in ns + ([QMC_BIG] if method == "qmc" else [])]
                pts = [(n, e) for n, e in pts if e is not None]
                if pts:
                    ls = "--" if method == "probnum_ours_ls" else "-"
                    marker = "*" if method == "ours_ivr" else "o"
                    ax.loglog(*zip(*pts), ls, marker=marker, ms=9 if marker == "*" else 3, color=colour, label=method)
            ax.set_title(f"{family}, d={d}")
            ax.set_xlabel("n (nodes)")
            ax.set_ylabel("median |error|")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    cal = summary["calibration"]
    speed = summary.get("adaptive_speedup_vs_emukit", {}).get("speedup")
    fig.suptitle(
        "Genz integrals on [0,1]^d: median |error| over instances vs n (star: adaptive IVR at n=64)\n"
        "share |error| <= 2 std: " + ", ".join(f"{m} {v['share_within_2std']:.2f}" for m, v in cal.items())
        + (f";  per adaptive iteration {speed:.0f}x faster than emukit" if speed else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer n, instances and loop iterations")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--emukit-max-n", type=int, default=None)
    args = parser.parse_args()
    ns = [8, 32, 64, 128] if args.quick else [8, 16, 32, 64, 128, 256]
    num_instances = 3 if args.quick else 5
    emukit_max_n = args.emukit_max_n or (32 if args.quick else 64)
    repeats = 2 if args.quick else 3
    have_emukit = _version("emukit") is not None and _version("GPy") is not None
    start = time.time()
    log = lambda msg: print(f"[{time.time() - start:6.1f}s] {msg}", flush=True)  # noqa: E731

    problem = genz_random("gaussian_peak", key=jax.random.key(42), dim=2)
    adaptive = adaptive_timing(problem, float(problem.solution), 8, 16 if args.quick else 32, 4 if args.quick else 8, have_emukit)
    log(f"adaptive: {json.dumps(adaptive)}")
    records, compile_times, memory = sweep(ns, num_instances, emukit_max_n, have_emukit, repeats, log)
    summary = summarise(records, ns, adaptive)
    summary["compile_time_s"] = {"median_fit_and_bq": float(np.median(list(compile_times.values()))), "adaptive_ivr_loop": adaptive["ours"]["compile_s"]}
    peaks = {m: [r["peak_bytes"] for r in records if r.get("method") == m and "peak_bytes" in r and r["n"] == 32] for m in ("probnum", "emukit")}
    summary["memory_n32"] = {
        "ours_xla_temp_bytes_per_integral": {k: v for k, v in memory.items() if k.startswith("n=32,")},
        "probnum_tracemalloc_peak_bytes_median": float(np.median(peaks["probnum"])) if peaks["probnum"] else None,
        "emukit_tracemalloc_peak_bytes_median": float(np.median(peaks["emukit"])) if peaks["emukit"] else None,
    }
    os.makedirs(args.out, exist_ok=True)
    result = {
        "benchmark": "bq",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "quick": args.quick,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
                    "jax_backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                    "gpu": "not available in this session; CPU only"},  # fmt: skip
        "versions": {k: _version(k) for k in ("jax", "probnum", "emukit", "GPy", "scipy", "numpy")},
        "emukit_available": have_emukit,
        "notes": [
            "probnum 0.1.25 uses np.Inf and np.float_, removed in NumPy 2; the script restores both aliases before importing it.",
            "No GPU was available to this session: all numbers are CPU, float64.",
        ],
        "config": {"families": FAMILIES, "dims": DIMS, "ns": ns, "instances": num_instances, "emukit_max_n": emukit_max_n, "qmc_big": QMC_BIG},
        "summary": summary,
        "adaptive": adaptive,
        "compile_time_s": compile_times,
        "records": records,
        "runtime_s": time.time() - start,
    }
    with open(os.path.join(args.out, "bq.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    plot(records, ns, summary, adaptive, os.path.join(args.out, "bq.png"))
    log("summary: " + json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
