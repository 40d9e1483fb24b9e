"""Run one notebook the way JupyterLab does (in a process of its own: the `lab_notebooks` fixture's pool
imports this module by name, which a conftest module cannot be)."""

from __future__ import annotations


def execute_in_lab(notebook: str, output: str, cwd: str) -> None:
    """Execute `notebook` into `output` with its working directory `cwd` and no injected parameters."""
    import papermill

    papermill.execute_notebook(notebook, output, cwd=cwd, kernel_name="python3", progress_bar=False,
                               execution_timeout=600)
