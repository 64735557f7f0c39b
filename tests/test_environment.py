"""Pins live in requirements/constraints.txt; pyproject.toml and environment.yml must agree with it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_normal(name)] = version
    return pins


def _requirements_with_pins(requirements):
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(==\s*([^;\s]+))?\s*", requirement)
        assert match, f"unexpected requirement syntax {requirement!r}"
        yield _normal(match.group(1)), match.group(4)


def test_every_dependency_is_pinned_in_the_constraints():
    pins = _constraints()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    for name, version in _requirements_with_pins(requirements):
        assert name in pins, f"{name} is a dependency but has no pin in requirements/constraints.txt"
        if version is not None:
            assert version == pins[name], f"pyproject pins {name}=={version}, constraints say {pins[name]}"


def test_torch_is_the_cpu_wheel_version():
    assert _constraints()["torch"] == "2.13.0"


def test_environment_yml_agrees_with_the_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c requirements/constraints.txt" in pip_section, "environment.yml must install with the constraints"
    pins = _constraints()
    checked = 0
    for entry in pip_section:
        if entry.startswith("-"):
            continue
        name, version = next(_requirements_with_pins([entry]))
        assert version == pins.get(name), f"environment.yml pins {name}=={version}, constraints say {pins.get(name)}"
        checked += 1
    assert checked >= 5
