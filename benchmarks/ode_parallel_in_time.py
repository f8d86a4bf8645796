"""Parallel-in-time vs sequential ODE smoothing on fixed grids of 10^3 ... 10^5 points.

``ode.solve_fixed_grid(..., parallel=True)`` runs the iterated extended Kalman
smoother with ``jax.lax.associative_scan`` (depth ``O(log N)`` per iteration);
``parallel=False`` is the sequential square-root EK1 smoother (one
``lax.scan``, depth ``O(N)``). Both use EK1 (dense), ``q = 3``, the smoother
strategy and the global MLE output scale, in float64, on the Lotka–Volterra
problem over ``[0, 10]`` (about one and a half periods) with ``N`` equispaced
grid points.

Per ``N`` the script records the run time after compilation (best of a few
repeats), the compile time, XLA's memory estimate of the compiled program, the
number of Gauss–Newton iterations, and the largest difference between the two
posterior means and stds. The headline number is ``parallel / sequential`` run
time. On a CPU this ratio is large: the parallel smoother does
``O(iterations · N)`` work (each associative-scan element needs matrix
inversions) where the sequential smoother does ``O(N)``, and a CPU cannot run
the ``N`` elements of one scan level concurrently. The parallel method is meant
for GPUs, where a scan level runs in one kernel launch and depth, not work,
bounds the run time.

Run::

    python benchmarks/ode_parallel_in_time.py            # N = 1e3 ... 1e5
    python benchmarks/ode_parallel_in_time.py --quick    # N = 1e3, 3e3, 1e4

Each grid size runs in its own process with a time limit (``--timeout``); a
size that does not finish is recorded as a failure instead of stopping the
run. (Until the smoother's small solves were moved from batched LAPACK calls to
``jnp`` loops, XLA's CPU runtime hung at ``N >= 1000``.)
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The same single-threaded Eigen setting as the test suite.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import probnum_jax as pnx  # noqa: E402

from _common import machine_info, memory_bytes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOLVER = pnx.ode.EK1(num_derivatives=3, strategy="smoother", calibration="mle")


def run(num_points, repeats):
    ivp = pnx.problems.lotka_volterra(t1=10.0)
    grid = jnp.linspace(ivp.t0, ivp.t1, num_points)
    out = {}
    for name, parallel in (("sequential", False), ("parallel", True)):

        def solve(y0, parallel=parallel):
            sol = pnx.ode.solve_fixed_grid(ivp.vector_field, y0, grid, solver=SOLVER, args=ivp.args, parallel=parallel)
            return sol.mean, sol.std, sol.num_iterations if parallel else jnp.zeros((), jnp.int32), sol.result._value

        t0 = time.perf_counter()
        compiled = jax.jit(solve).lower(ivp.y0).compile()
        compile_s = time.perf_counter() - t0
        result = jax.block_until_ready(compiled(ivp.y0))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(ivp.y0))
            times.append(time.perf_counter() - t0)
        out[name] = dict(
            time_s=min(times), compile_s=compile_s, memory_bytes=memory_bytes(compiled),
            iterations=int(result[2]), success=int(result[3]) == 0, mean=result[0], std=result[1],
        )
    seq, par = out["sequential"], out["parallel"]
    row = dict(
        num_points=num_points,
        sequential={k: v for k, v in seq.items() if k not in ("mean", "std")},
        parallel={k: v for k, v in par.items() if k not in ("mean", "std")},
        max_mean_difference=float(jnp.max(jnp.abs(seq["mean"] - par["mean"]))),
        max_std_relative_difference=float(jnp.max(jnp.abs(seq["std"][1:] - par["std"][1:]) / seq["std"][1:])),
        time_ratio_parallel_over_sequential=par["time_s"] / seq["time_s"],
        compile_ratio_parallel_over_sequential=par["compile_s"] / seq["compile_s"],
    )
    print(
        f"N={num_points:>7}  sequential {seq['time_s']:8.3f} s  parallel {par['time_s']:8.3f} s "
        f"({par['iterations']} iterations)  ratio {row['time_ratio_parallel_over_sequential']:6.1f}  "
        f"compile {seq['compile_s']:.1f} / {par['compile_s']:.1f} s  "
        f"max |mean diff| {row['max_mean_difference']:.1e}",
        flush=True,
    )
    return row


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["num_points"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("sequential", "parallel"):
        axes[0].loglog(n, [r[name]["time_s"] for r in rows], "o-", label=name)
    axes[0].set(xlabel="grid points N", ylabel="run time [s]", title="EK1 smoother on Lotka-Volterra")
    axes[1].semilogx(n, [r["time_ratio_parallel_over_sequential"] for r in rows], "o-", label="run time")
    axes[1].semilogx(n, [r["parallel"]["iterations"] for r in rows], "s--", label="Gauss-Newton iterations")
    axes[1].set(xlabel="grid points N", ylabel="parallel / sequential", title=f"device: {jax.devices()[0].platform}")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_isolated(num_points, repeats, timeout):
    """One grid size in a fresh process, so that a hang of XLA's CPU runtime costs one row, not the run."""
    cmd = [sys.executable, os.path.abspath(__file__), "--single", str(num_points), "--repeats", str(repeats)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        print(f"N={num_points:>7}  no result within {timeout} s", flush=True)
        return dict(num_points=num_points, failure=f"no result within {timeout} s")
    except subprocess.CalledProcessError as e:
        return dict(num_points=num_points, failure=e.stderr[-2000:])
    print(out.stdout.strip().splitlines()[0], flush=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per grid size")
    args = parser.parse_args()
    if args.single:
        row = run(args.single, args.repeats)
        print(json.dumps(row))
        return
    sizes = [1_000, 3_000, 10_000] if args.quick else [1_000, 3_000, 10_000, 30_000, 100_000]
    repeats = 2 if args.quick else 3
    rows = [run_isolated(n, repeats, args.timeout) for n in sizes]
    result = dict(
        benchmark="ode_parallel_in_time",
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=machine_info(),
        settings=dict(quick=args.quick, sizes=sizes, repeats=repeats, problem="lotka_volterra t1=10",
                      solver="EK1 dense q=3 smoother mle", timeout_s=args.timeout),
        rows=rows,
    )
    os.makedirs(args.out, exist_ok=True)
    stem = "ode_parallel_in_time_quick" if args.quick else "ode_parallel_in_time"
    with open(os.path.join(args.out, stem + ".json"), "w") as fh:
        json.dump(result, fh, indent=2)
    plot([r for r in rows if "failure" not in r], os.path.join(args.out, stem + ".png"))


if __name__ == "__main__":
    main()
