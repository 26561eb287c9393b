"""The import graph, read with ast (every import statement, also those inside functions; `if TYPE_CHECKING:` blocks
left out): no module imports itself through a circle, and the core never imports bench or exporters."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("segx", "bench", "exporters")
NOT_CORE = ("segx.commands", "segx.cli", "segx.api", "segx.demo", "segx.predict", "segx.serve", "segx.__main__")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    mods = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def imported_names(path: Path, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Dotted names `path` imports: `import a.b` -> a.b; `from a import b` -> a.b when that is one of `modules`
    (a submodule), else a."""
    names: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            names.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in modules else str(node.module))

    Visitor().visit(ast.parse(path.read_text(), str(path)))
    return names


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    mods = module_files(root)
    return {mod: {n for n in imported_names(path, set(mods)) if n in mods and n != mod} for mod, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def is_core(mod: str) -> bool:
    return mod.startswith("segx") and not any(mod == p or mod.startswith(p + ".") for p in NOT_CORE)


def test_import_graph_has_no_circle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["segx.checkpoint"]  # the walk found the project
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_core_never_imports_bench_or_exporters() -> None:
    bad = sorted(f"{mod} imports {name}" for mod, path in module_files().items() if is_core(mod)
                 for name in imported_names(path) if name.split(".")[0] in ("bench", "exporters"))
    assert not bad, "; ".join(bad)


def test_checker_finds_a_circle_and_a_layer_breach(tmp_path: Path) -> None:
    """The checks above can fail: a made-up tree with a circle through a function-level import, and a core module
    importing bench."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "segx" / "a.py").write_text("from segx import b\n")
    (tmp_path / "segx" / "b.py").write_text("def f():\n    from segx.a import g\n")
    (tmp_path / "segx" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import segx.a\n")
    graph = import_graph(tmp_path)
    assert find_cycle(graph) == ["segx.a", "segx.b", "segx.a"]
    assert graph["segx.c"] == set()
    (tmp_path / "segx" / "b.py").write_text("import bench.x\n")
    assert find_cycle(import_graph(tmp_path)) is None
    assert imported_names(tmp_path / "segx" / "b.py") == {"bench.x"} and is_core("segx.b")
    assert not is_core("segx.commands.bench") and not is_core("segx.predict")


@pytest.mark.parametrize("mod", ["segx.models.registry", "segx.checkpoint", "segx.demo.run", "segx.engine.run"])
def test_former_circles_are_edges_one_way(mod: str) -> None:
    graph = import_graph()
    assert all(mod not in graph[dep] for dep in graph[mod])
