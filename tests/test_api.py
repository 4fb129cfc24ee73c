"""The public API, pinned: its names and signatures, and the direction of imports.

``tests/api_surface.txt`` lists every public name (each package's ``__all__``), every
public method of the public classes, and their signatures. A change to it is a change to
what users call, so it is made on purpose: run ``python tests/test_api.py --write``,
review the diff of ``tests/api_surface.txt`` and say in ``docs/api.md`` what changed (a
renamed name keeps its old spelling for a release, with a ``DeprecationWarning``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

SURFACE = Path(__file__).with_name("api_surface.txt")
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "iotlab",
    "iotlab.analytics",
    "iotlab.detect",
    "iotlab.errors",
    "iotlab.history",
    "iotlab.ingest",
    "iotlab.ingest.kafka",
    "iotlab.reports",
    "iotlab.sensors",
    "iotlab.simulate",
    "iotlab.store",
    "iotlab.store.queries",
    "iotlab.widgets",
)


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # follows functools.wraps to the real one
    except (TypeError, ValueError):
        return "(...)"


def _describe(module_name: str, name: str, obj: object) -> list[str]:
    where = f"{module_name}.{name}"
    if inspect.isclass(obj):
        lines = [f"class {where}{_signature(obj)}"]
        for attr, member in sorted(vars(obj).items()):
            if attr.startswith("_"):
                continue
            if isinstance(member, property):
                lines.append(f"  property {attr}")
            elif isinstance(member, staticmethod | classmethod):
                lines.append(f"  {type(member).__name__} {attr}{_signature(member.__func__)}")
            elif inspect.isfunction(member):
                lines.append(f"  method {attr}{_signature(member)}")
        return lines
    if inspect.isfunction(obj):
        return [f"def {where}{_signature(obj)}"]
    if inspect.ismodule(obj):
        return [f"module {where}"]
    return [f"{type(obj).__name__} {where}"]


def api_surface() -> str:
    """Every public name of :data:`PACKAGES` with its signature, one per line."""
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for module_name in PACKAGES:
            module = importlib.import_module(module_name)
            for name in sorted(module.__all__):
                if module_name == "iotlab" and name != "Platform" and name != "connect":
                    lines.append(f"name iotlab.{name}")
                    continue
                lines.extend(_describe(module_name, name, getattr(module, name)))
    return "\n".join(lines) + "\n"


def test_the_public_api_is_what_was_pinned():
    now, pinned = api_surface(), SURFACE.read_text()
    if now != pinned:
        diff = "".join(
            difflib.unified_diff(
                pinned.splitlines(True), now.splitlines(True), "pinned", "now", n=1
            )
        )
        pytest.fail(
            "the public API changed; if on purpose, run `python tests/test_api.py --write` "
            f"and document it in docs/api.md:\n{diff}"
        )


def test_every_platform_method_keeps_its_options_keyword_only():
    """The vocabulary's rule of form: after the obvious first argument, keywords only."""
    from iotlab import Platform

    loose = {}
    for name, member in vars(Platform).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        params = list(inspect.signature(member).parameters.values())[1:]  # after self
        positional = [
            p.name
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
        ]
        if len(positional) > 1:
            loose[name] = positional
    # subscribe's second positional slot only carries 0.1's (event_type, callback) form.
    loose.pop("subscribe", None)
    assert loose == {}, f"methods with more than one positional argument: {loose}"


def _lint_imports(config: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("lint-imports"))]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_imports_flow_one_way_through_the_layers():
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout, result.stdout


def test_the_layer_check_sees_a_real_upward_import(tmp_path):
    """The contract is not vacuous: put the store above the platform, which imports it,
    and the same checker reports it broken."""
    inverted = tmp_path / "inverted.toml"
    inverted.write_text(
        '[tool.importlinter]\nroot_package = "iotlab"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "inverted"\ntype = "layers"\n'
        'layers = ["iotlab.store", "iotlab.platform"]\n'
    )
    result = _lint_imports(inverted)
    assert result.returncode != 0
    assert "iotlab.platform is not allowed to import iotlab.store" in result.stdout


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        SURFACE.write_text(api_surface())
        print(f"wrote {SURFACE}")
    else:
        sys.stdout.write(api_surface())
