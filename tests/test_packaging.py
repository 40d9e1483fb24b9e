"""The packaging promises README makes: one dependency list in two formats, an explicit public API."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import distribution, packages_distributions, version
from importlib.util import cache_from_source
from pathlib import Path

import yaml
from packaging.requirements import Requirement

import statex_bi

ROOT = Path(__file__).resolve().parent.parent
# conda-forge spells a few packages differently from PyPI.
CONDA_TO_PYPI = {"python-duckdb": "duckdb", "jupyter_client": "jupyter-client", "jupyter_core": "jupyter-core"}


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


def _declared() -> dict[str, list[str]]:
    """Every requirement of pyproject.toml (dependencies and all extras), by normalised name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    by_name: dict[str, list[str]] = {}
    for requirement in requirements:
        by_name.setdefault(_canonical(_name(requirement)), []).append(requirement)
    return by_name


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    """requirements.lock's pins: normalised name -> version."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[_canonical(match.group(1))] = match.group(3)
    return pins


def test_the_lock_pins_every_dependency_of_pyproject_within_its_range():
    pins = _locked()
    missing = sorted(set(_declared()) - set(pins))
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"
    for name, requirements in _declared().items():
        for text in requirements:
            assert Requirement(text).specifier.contains(pins[name], prereleases=True), (
                f"requirements.lock pins {name}=={pins[name]}, outside {text!r} (run `make lock`)"
            )


def test_the_installed_environment_is_the_locked_one():
    for name in _declared():
        assert _canonical(version(name)) == _canonical(_locked()[name]), f"{name}: run `make` to install the lock"


def test_the_installed_packages_are_compiled_to_bytecode():
    """`make` compiles what it installs (Makefile, --compile-bytecode), as pip does and uv does not unless told.
    Where PYTHONDONTWRITEBYTECODE is set, a process would otherwise compile every module it imports from source,
    each time: importing dbt, dlt, pandas and the kernels' libraries took twice the CPU, in every process."""
    uncompiled = {}
    for name in _declared():
        dist = distribution(name)
        sources = [Path(dist.locate_file(file)) for file in dist.files or ()
                   if file.suffix == ".py" and file.parts[0] != ".."]  # not scripts in the venv's bin/
        missing = [source for source in sources if not Path(cache_from_source(source)).exists()]
        if missing:
            uncompiled[name] = f"{len(missing)} of {len(sources)}, e.g. {missing[0]}"
    assert not uncompiled, f"modules without bytecode (rebuild .venv with `make`): {uncompiled}"


def test_jsonschema_loads_without_the_slow_iri_checker():
    """The lock leaves rfc3987-syntax out (Makefile, LOCK_OMIT): when installed, jsonschema imports it and
    it builds 39 parsers at import, seconds in every dbt, papermill and kernel process."""
    probe = "import sys, jsonschema; print('rfc3987_syntax' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False", "rfc3987-syntax is installed: rebuild .venv from requirements.lock (`make`)"


def _imported_top_level_modules() -> dict[str, str]:
    """Top-level modules imported by the package, the tests and the benchmarks -> one file importing each."""
    # Test helpers and bench/measure.py are imported by file name from their own folders.
    local = {path.stem for folder in ("tests", "bench") for path in (ROOT / folder).rglob("*.py")} | {"statex_bi"}
    found: dict[str, str] = {}
    for folder in ("statex_bi", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in local:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared_in_pyproject():
    distributions = packages_distributions()
    declared = set(_declared())
    undeclared = {
        module: where
        for module, where in _imported_top_level_modules().items()
        if not declared & {_canonical(d) for d in distributions.get(module, [module])}
    }
    assert not undeclared, f"imported but not declared in pyproject.toml (module: a file importing it): {undeclared}"
