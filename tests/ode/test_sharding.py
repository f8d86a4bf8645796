"""A batch of adaptive solves sharded across (simulated) devices with ``jax.sharding``."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import probnum_jax as pnx

    assert len(jax.devices()) == 4, jax.devices()
    ivp = pnx.problems.lotka_volterra()
    solver = pnx.ode.EK0(num_derivatives=3)

    def final(y0):
        sol = pnx.ode.solve(ivp.vector_field, y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args, solver=solver,
                            atol=1e-5, rtol=1e-5)
        return sol.mean[-1], sol.num_steps

    y0s = ivp.y0 * jnp.linspace(0.6, 1.4, 8)[:, None]
    mesh = Mesh(np.asarray(jax.devices()), ("batch",))
    sharded = jax.device_put(y0s, NamedSharding(mesh, P("batch")))
    solve_batch = jax.jit(jax.vmap(final))
    means, steps = solve_batch(sharded)
    assert len(means.sharding.device_set) == 4, means.sharding
    ref_means, ref_steps = jax.vmap(final)(y0s)       # one device
    np.testing.assert_allclose(means, ref_means, rtol=1e-10)
    np.testing.assert_array_equal(steps, ref_steps)   # every instance keeps its own step sizes
    assert len(set(np.asarray(steps).tolist())) > 1
    print("ok", np.asarray(steps).tolist())
    """
)


def test_batch_sharded_over_four_simulated_devices_matches_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")
