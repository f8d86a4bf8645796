"""Helpers shared by the benchmark scripts: the machine record and XLA's memory estimate."""

import datetime
import os
import platform
import sys
from importlib import metadata

import jax
import numpy as np

PEERS = ("probdiffeq", "diffrax", "equinox", "optax", "scipy", "blackjax", "laplace-torch", "torch")


def package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info():
    """What the numbers were measured on: platform, devices, load, and library versions."""
    versions = {name: package_version(name) for name in ("probnum_jax", "jaxlib") + PEERS}
    return dict(
        platform=platform.platform(), python=sys.version.split()[0], processor=platform.processor(),
        cpu_count=os.cpu_count(), load_average_at_start=list(os.getloadavg()),
        jax=jax.__version__, jax_backend=jax.default_backend(), device=jax.devices()[0].device_kind,
        devices=[str(d) for d in jax.devices()], numpy=np.__version__,
        versions={k: v for k, v in versions.items() if v is not None},
        openblas_num_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def memory_bytes(compiled):
    """XLA's estimate of a compiled program's memory (arguments + outputs + temporaries), or None."""
    m = compiled.memory_analysis()
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
