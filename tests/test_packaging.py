"""The packaging promises README makes: one dependency list in two formats, an explicit public API."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import statex_bi

ROOT = Path(__file__).resolve().parent.parent
# conda-forge spells a few packages differently from PyPI.
CONDA_TO_PYPI = {"python-duckdb": "duckdb"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = {_name(r) for r in project["dependencies"]}
    pip_side |= {_name(r) for extra in project["optional-dependencies"].values() for r in extra}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_side = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda_side |= {_name(r) for r in dep["pip"] if not r.startswith("-")}
        elif _name(dep) not in {"python", "pip"}:
            conda_side.add(CONDA_TO_PYPI.get(_name(dep), _name(dep)))

    assert conda_side == pip_side, (
        f"only in environment.yml: {sorted(conda_side - pip_side)}; "
        f"only in pyproject.toml: {sorted(pip_side - conda_side)}"
    )


def test_public_api_is_sorted_and_complete():
    assert statex_bi.__all__ == sorted(statex_bi.__all__)
    for name in statex_bi.__all__:
        assert hasattr(statex_bi, name), name
    public = {n for n in vars(statex_bi) if not n.startswith("_") and not isinstance(getattr(statex_bi, n), type(re))}
    assert public <= set(statex_bi.__all__), f"exported but not in __all__: {public - set(statex_bi.__all__)}"


def test_console_script_points_at_cli_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["statex-bi"] == "statex_bi.cli:main"
