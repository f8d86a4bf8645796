"""Every public name has its docs page, and every page names something public."""

import importlib
import pathlib

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api"
SUBPACKAGES = sorted(p.name for p in DOCS.iterdir() if p.is_dir())


def _public_names(sub):
    module = importlib.import_module(f"probnum_jax.{sub}")
    names = set()
    for name in module.__all__:
        obj = getattr(module, name)
        nested = getattr(obj, "__all__", None)
        if nested is not None and type(obj).__name__ == "module":
            names.update(f"{name}.{inner}" for inner in nested)
        else:
            names.add(name)
    return names


def test_the_core_subpackages_are_documented():
    assert {"ode", "randvars", "problems"} <= set(SUBPACKAGES)


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_one_page_per_public_name(sub):
    pages = {p.stem for p in (DOCS / sub).glob("*.md")}
    names = _public_names(sub)
    assert names - pages == set(), f"public names without a docs page in docs/api/{sub}/"
    assert pages - names == set(), f"docs pages for names that are not public in probnum_jax.{sub}"
