"""Count what the composition root (docs/architecture.md, `hrlc.backends`) forbids below it; exit 1 if any.

1. Reads of the configuration below the entry points: `Settings()`, `get_settings()`, `os.environ`,
   `os.getenv` anywhere in `src/hrlc` but the modules where a process starts (`ENTRY_POINTS`).
2. Back ends typed `Any` in `hrlc.api` and `hrlc.jobs`: a parameter, attribute or variable named like a
   port (`store`, `catalog`, `jobs`, ...) annotated `Any` (or `Any | None`), where a port's Protocol belongs.

The import layers themselves are import-linter's (`lint-imports`, contracts in pyproject.toml).

    python scripts/check_architecture.py        # one line per finding, then the counts
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "hrlc"

# Where a process starts and reads its settings (paths relative to src/hrlc).
ENTRY_POINTS = {
    "settings.py",  # defines Settings and get_settings
    "backends.py",  # the composition root
    "cli.py",
    "catalog/ingest_cli.py",
    "training/cli.py",
    "ancillary/cli.py",
    "sample/__main__.py",
}
CONFIG_CALLS = {"Settings", "get_settings"}
PORT_NAMES = {
    "store", "lake", "catalog", "jobs", "training", "ancillary", "backends", "collections", "source", "udps",
}  # fmt: skip
TYPED_PACKAGES = ("api/", "jobs/")


def config_reads(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in CONFIG_CALLS:
                found.append((node.lineno, f"{name}()"))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            if node.attr in {"environ", "getenv", "environb"}:
                found.append((node.lineno, f"os.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in {"environ", "getenv", "environb"}:
                    found.append((node.lineno, f"from os import {alias.name}"))
    return found


def _is_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):  # "Any" as a string
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(annotation, ast.Name):
        return annotation.id == "Any"
    if isinstance(annotation, ast.BinOp):  # Any | None
        return _is_any(annotation.left) or _is_any(annotation.right)
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name):
        return annotation.value.id == "Optional" and _is_any(annotation.slice)
    return False


def _port_name(name: str) -> bool:
    return name.lstrip("_") in PORT_NAMES


def any_backends(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _port_name(node.arg) and _is_any(node.annotation):
            found.append((node.lineno, f"parameter {node.arg}: Any"))
        elif isinstance(node, ast.AnnAssign) and _is_any(node.annotation):
            target = node.target
            name = (
                target.id
                if isinstance(target, ast.Name)
                else target.attr
                if isinstance(target, ast.Attribute)
                else ""
            )
            if _port_name(name):
                found.append((node.lineno, f"{name}: Any"))
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and _port_name(node.name)
            and _is_any(node.returns)
        ):
            found.append((node.lineno, f"def {node.name}() -> Any"))
    return found


def main() -> int:
    reads = anys = 0
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        if rel not in ENTRY_POINTS:
            for line, what in config_reads(tree):
                print(f"src/hrlc/{rel}:{line}: {what} below the composition root (take it as an argument)")
                reads += 1
        if rel.startswith(TYPED_PACKAGES):
            for line, what in any_backends(tree):
                print(f"src/hrlc/{rel}:{line}: {what}: type it with the port's Protocol")
                anys += 1
    print(
        f"configuration reads below the composition root: {reads}; Any-typed back ends in api/ and jobs/: {anys}"
    )
    return 1 if reads or anys else 0


if __name__ == "__main__":
    sys.exit(main())
