"""The package's promises about itself: dependencies mirrored, public names pinned."""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import iotlab
from iotlab.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]


def _requirement(text: str) -> tuple[str, str]:
    """``(name, bounds)``: a lower bound, and optionally an upper one (``>=1.2,<1.4``)."""
    match = re.fullmatch(
        r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(>=\s*[0-9][0-9.]*(?:\s*,\s*<\s*[0-9][0-9.]*)?)\s*",
        text,
    )
    assert match, f"not a 'name>=version[,<version]' requirement: {text!r}"
    return match.group(1).lower(), re.sub(r"\s", "", match.group(2))


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


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once_and_the_installed_metadata_agrees():
    project = _pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    source = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert source == "iotlab.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", iotlab.__version__)
    assert version("iotlab") == iotlab.__version__


def test_every_extra_an_error_recommends_exists():
    """A ``MissingDependencyError(package, extra)`` in the package names a real extra."""
    extras = set(_pyproject()["project"]["optional-dependencies"])
    named = []
    for path in (ROOT / "iotlab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == MissingDependencyError.__name__
            ):
                extra = node.args[1] if len(node.args) > 1 else None
                extra = next((k.value for k in node.keywords if k.arg == "extra"), extra)
                named.append((path.name, ast.literal_eval(extra) if extra else None))
    assert ("mqtt.py", "mqtt") in named and ("_cql_connect.py", None) in named
    assert not [(f, e) for f, e in named if e is not None and e not in extras]
    core = MissingDependencyError("cassandra-driver")
    assert "iotlab[" not in str(core) and "cassandra-driver" in str(core)
    assert "pip install 'iotlab[mqtt]'" in str(MissingDependencyError("paho-mqtt", "mqtt"))


def test_type_information_ships_with_the_package():
    assert (ROOT / "iotlab" / "py.typed").is_file()
    assert "py.typed" in _pyproject()["tool"]["setuptools"]["package-data"]["iotlab"]
