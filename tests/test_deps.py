"""The dependency lists in pyproject.toml: no install line built from its extras puts both onnxruntime packages
(onnxruntime and onnxruntime-gpu both write the `onnxruntime` module; the CUDA provider then often disappears), and
the heavy runtimes live in extras, not in the base install."""
from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
ORT = {"onnxruntime", "onnxruntime-gpu"}


def _name(requirement: str) -> str:
    """'onnxruntime-gpu>=1.18; python_version<"3.13"' -> 'onnxruntime-gpu' (PEP 503 normalised)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert name, f"unparsable requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", name.group(1)).lower()


def _expand(names: set[str], extras: dict[str, list[str]], seen: set[str] | None = None) -> set[str]:
    """Package names of a set of extras, following self-references such as segx[cpu] inside another extra."""
    seen = set() if seen is None else seen
    out: set[str] = set()
    for extra in names - seen:
        seen.add(extra)
        for req in extras[extra]:
            if _name(req) == "segx":
                inner = set(re.findall(r"[A-Za-z0-9_-]+", req.split("[", 1)[1].split("]")[0])) if "[" in req else set()
                out |= _expand(inner, extras, seen)
            else:
                out.add(_name(req))
    return out


def conflicting(combo: tuple[str, ...], conflicts: list[list[dict[str, str]]]) -> bool:
    """True when `combo` holds two extras that [tool.uv] conflicts declares mutually exclusive."""
    return any(sum(item.get("extra") in combo for item in group) > 1 for group in conflicts)


def installs(project: dict, conflicts: list[list[dict[str, str]]]) -> dict[tuple[str, ...], set[str]]:
    """Every allowed combination of extras -> the package names that install line pulls in directly."""
    base = {_name(r) for r in project["dependencies"]}
    extras = project.get("optional-dependencies", {})
    combos = (c for n in range(len(extras) + 1) for c in itertools.combinations(sorted(extras), n))
    return {combo: base | _expand(set(combo), extras) for combo in combos if not conflicting(combo, conflicts)}


def mixed(project: dict, conflicts: list[list[dict[str, str]]]) -> list[tuple[str, ...]]:
    return [combo for combo, names in installs(project, conflicts).items() if ORT <= names]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


@pytest.fixture(scope="module")
def project(pyproject: dict) -> dict:
    return pyproject["project"]


@pytest.fixture(scope="module")
def conflicts(pyproject: dict) -> list[list[dict[str, str]]]:
    return pyproject.get("tool", {}).get("uv", {}).get("conflicts", [])


def test_no_extra_combination_installs_both_onnxruntimes(project: dict, conflicts: list) -> None:
    assert [{"extra": "cpu"}, {"extra": "gpu"}] in conflicts  # the one pair declared exclusive
    assert len(installs(project, conflicts)) >= 2 ** (len(project["optional-dependencies"]) - 1)
    assert mixed(project, conflicts) == [], "these extras install onnxruntime and onnxruntime-gpu together"


def test_the_check_catches_a_mix(project: dict, conflicts: list) -> None:
    """The same check finds a gpu line when onnxruntime sits in the base dependencies, another extra pulls it in,
    or the cpu/gpu conflict is not declared."""
    broken = {**project, "dependencies": [*project["dependencies"], "onnxruntime>=1.18"]}
    assert ("gpu",) in mixed(broken, conflicts)
    extras = project["optional-dependencies"]
    nested = {**project, "optional-dependencies": {**extras, "all": ["segx[cpu,gpu]"]}}
    assert ("all",) in mixed(nested, conflicts)
    assert ("gpu", "test") in mixed({**project, "optional-dependencies": {**extras, "test": ["onnxruntime"]}},
                                    conflicts)
    assert ("cpu", "gpu") in mixed(project, [])


def test_runtimes_live_in_extras(project: dict) -> None:
    base = {_name(r) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    assert not base & (ORT | {"openvino", "nncf", "tensorrt"}), base
    assert {"onnxruntime", "openvino", "nncf"} <= {_name(r) for r in extras["cpu"]}
    assert {"onnxruntime-gpu", "tensorrt"} <= {_name(r) for r in extras["gpu"]}


def test_makefile_installs_the_cpu_extra() -> None:
    makefile = (PYPROJECT.parent / "Makefile").read_text()
    extras = set(re.search(r'-e "\.\[([a-z,]+)\]"', makefile).group(1).split(","))
    assert {"cpu", "test"} <= extras and "gpu" not in extras  # one onnxruntime only
    assert "test-gpu: install" in makefile and "pytest -q -m gpu tests" in makefile
