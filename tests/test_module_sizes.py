"""Modules stay small (issue 21): no module of the product package over 400 lines, no function or
method over 60, except the offenders listed below while they are being split. An offender may
shrink; one that grows, or is fixed but still listed, fails, so the list only gets shorter."""

from __future__ import annotations

import ast
from pathlib import Path

import pipelines

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Being split (issue 21); the size each had when listed is the most it may have.
MODULES_BEING_SPLIT = {
    "contracts/__init__.py": 745,
    "stages/gx_duckdb.py": 548,
    "stages/validate.py": 448,
}
FUNCTIONS_BEING_SPLIT = {
    "contracts/__init__.py:check_specs": 97,
    "stages/validate.py:validate": 85,
    "stages/stage.py:stage": 72,
}

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


def _too_long(sizes: dict[str, int], limit: int, being_split: dict[str, int]) -> dict[str, int]:
    return {name: size for name, size in sizes.items() if size > limit and name not in being_split}


def test_no_module_of_the_package_is_over_400_lines_but_those_being_split() -> None:
    too_long = _too_long(_module_sizes(), MAX_MODULE_LINES, MODULES_BEING_SPLIT)
    assert too_long == {}, f"modules over {MAX_MODULE_LINES} lines: split them by what they do"


def test_no_function_or_method_is_over_60_lines_but_those_being_split() -> None:
    too_long = _too_long(_all_function_sizes(), MAX_FUNCTION_LINES, FUNCTIONS_BEING_SPLIT)
    assert too_long == {}, f"functions over {MAX_FUNCTION_LINES} lines: split where the pieces have names"


def _listed_offenders_out_of_date(
    listed: dict[str, int], sizes: dict[str, int], limit: int
) -> dict[str, object]:
    """What is wrong with a list of offenders: names gone, offenders grown, offenders already split."""
    out_of_date: dict[str, object] = {
        "gone": [name for name in listed if name not in sizes],
        "grown": {name: sizes[name] for name, most in listed.items() if sizes.get(name, 0) > most},
        "split, still listed": {name: sizes[name] for name in listed if sizes.get(name, limit + 1) <= limit},
    }
    return {problem: names for problem, names in out_of_date.items() if names}


def test_a_module_being_split_never_grows_and_leaves_the_list_once_small() -> None:
    assert _listed_offenders_out_of_date(MODULES_BEING_SPLIT, _module_sizes(), MAX_MODULE_LINES) == {}


def test_a_function_being_split_never_grows_and_leaves_the_list_once_small() -> None:
    assert (
        _listed_offenders_out_of_date(FUNCTIONS_BEING_SPLIT, _all_function_sizes(), MAX_FUNCTION_LINES) == {}
    )


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
