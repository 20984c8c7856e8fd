"""Modules stay small (issue 21): no module of the product package over 400 lines, no function or
method over 60. Split what grows past them by what the pieces do, where they have names."""

from __future__ import annotations

import ast
from pathlib import Path

import pipelines

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

PACKAGE = Path(pipelines.__file__).parent


def _modules() -> dict[str, str]:
    """Every module of the product package by its path in the package -> its source."""
    return {path.relative_to(PACKAGE).as_posix(): path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}


def _function_sizes(source: str) -> dict[str, int]:
    """Every function and method of a module by qualified name -> its lines, decorators left out."""
    sizes: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                assert child.end_lineno is not None
                sizes[name] = child.end_lineno - child.lineno + 1
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return sizes


def _module_sizes() -> dict[str, int]:
    return {name: len(source.splitlines()) for name, source in _modules().items()}


def _all_function_sizes() -> dict[str, int]:
    return {
        f"{module}:{function}": size
        for module, source in _modules().items()
        for function, size in _function_sizes(source).items()
    }


def _too_long(sizes: dict[str, int], limit: int) -> dict[str, int]:
    return {name: size for name, size in sizes.items() if size > limit}


def test_no_module_of_the_package_is_over_400_lines() -> None:
    too_long = _too_long(_module_sizes(), MAX_MODULE_LINES)
    assert too_long == {}, f"modules over {MAX_MODULE_LINES} lines: split them by what they do"


def test_no_function_or_method_is_over_60_lines() -> None:
    too_long = _too_long(_all_function_sizes(), MAX_FUNCTION_LINES)
    assert too_long == {}, f"functions over {MAX_FUNCTION_LINES} lines: split where the pieces have names"


def test_function_sizes_count_nested_functions_and_methods_by_qualified_name() -> None:
    source = (
        "def outer():\n"
        "    def inner():\n"
        "        return 1\n"
        "    return inner\n"
        "\n"
        "class Reader:\n"
        "    @staticmethod\n"
        "    def read():\n"
        "        pass\n"
    )
    assert _function_sizes(source) == {"outer": 4, "outer.inner": 2, "Reader.read": 2}
