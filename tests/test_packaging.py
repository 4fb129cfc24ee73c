"""The package's promises about itself: dependencies mirrored, public names pinned."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import iotlab

ROOT = Path(__file__).resolve().parents[1]


def _requirement(text: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)\s*", text)
    assert match, f"not a 'name>=version' lower bound: {text!r}"
    return match.group(1).lower(), match.group(2)


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    return dict(_requirement(line) for line in lines)


def _environment_requirements() -> dict[str, str]:
    lines = []
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        item = raw.strip()
        if item.startswith("- ") and ">=" in item and not item.startswith("- python>="):
            lines.append(item[2:])
    return dict(_requirement(line) for line in lines)


def test_every_dependency_has_a_lower_bound_and_environment_yml_mirrors_it():
    assert _pyproject_requirements() == _environment_requirements()


def test_core_dependencies_named_by_the_design_are_declared():
    declared = _pyproject_requirements()
    for name in (
        "pandas",
        "numpy",
        "xarray",
        "matplotlib",
        "cassandra-driver",
        "prophet",
        "ipywidgets",
        "tqdm",
        "paho-mqtt",
        "dask",
        "pytest",
        "nbval",
        "jupyterlab",
        "ruff",
        "hypothesis",
    ):
        assert name in declared, name


def test_public_api_is_pinned():
    assert sorted(iotlab.__all__) == sorted(
        [
            "Platform",
            "__version__",
            "connect",
            "errors",
            "analytics",
            "datasets",
            "detect",
            "history",
            "ingest",
            "reports",
            "simulate",
            "store",
            "widgets",
        ]
    )


def test_errors_module_documents_every_error_class():
    doc = iotlab.errors.__doc__
    for name in iotlab.errors.__all__:
        assert name in doc, f"{name} missing from the error tree in iotlab/errors.py"
        assert issubclass(getattr(iotlab.errors, name), iotlab.errors.IotlabError)
