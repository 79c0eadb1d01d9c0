"""The layering of the package: a pure core, no import cycle, small modules.

``core/`` imports numpy and scipy only (scikit-learn lazily, inside the paper's rule), never
lm_eval, torch, datasets or transformers, and nothing from the other folders of the package. The
import graph of the whole package has no cycle, no module is over 400 lines, and no function is
over 60 lines unless its ``def`` line carries a ``# long: <reason>`` comment.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__import__("lm_eval_leakage").__file__).resolve().parent
CORE_MODULES = sorted(p.stem for p in (PACKAGE / "core").glob("*.py") if p.stem != "__init__")
MAX_LINES = 400
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_imports(path: Path) -> set[str]:
    """Modules of this package that ``path`` imports at any depth (lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lm_eval_leakage"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if _exists(candidate) else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lm_eval_leakage")}
    return found


def _exists(module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_heavy_library(module: str) -> None:
    code = (
        f"import sys, lm_eval_leakage.core.{module}\n"
        "heavy = sorted(m for m in ('lm_eval', 'torch', 'datasets', 'transformers', 'sklearn') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    env_off = {"LM_EVAL_LEAKAGE_AUTOLOAD": "0", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env_off)
    assert out.stdout.strip() == ""


def test_core_imports_nothing_from_the_other_layers() -> None:
    outside = {
        name: sorted(m for m in _package_imports(path) if not m.startswith("lm_eval_leakage.core"))
        for name, path in MODULES.items() if name.startswith("lm_eval_leakage.core")
    }
    assert {name: found for name, found in outside.items() if found} == {}


def test_import_graph_has_no_cycle() -> None:
    graph = {name: {m for m in _package_imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, node, target]))
            if target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_no_function_is_over_the_size_limit_without_a_reason() -> None:
    long = {}
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION_LINES and "# long:" not in lines[node.lineno - 1]:
                    long[f"{name}.{node.name}"] = size
    assert long == {}
