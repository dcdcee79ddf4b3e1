"""The package's shape as JSON: lines, `Any` annotations, the longest functions, the modules left at the root.

Why: a redesign is judged by numbers taken the same way before and after. `--rev REV` measures the package as it is
in that commit (read with `git archive`, nothing checked out), so one run can print both sides:

    python scripts/code_shape.py --rev 267383b --rev HEAD
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "mdmtune"


def sources_at(rev: str | None, root: Path) -> dict[str, str]:
    """path -> text of every .py file of the package, in the working tree (rev None) or at a commit."""
    if rev is None:
        return {str(p.relative_to(root)): p.read_text() for p in sorted((root / PACKAGE).rglob("*.py"))}
    archive = subprocess.run(["git", "archive", rev, PACKAGE], cwd=root, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {
            member.name: tar.extractfile(member).read().decode()
            for member in tar.getmembers()
            if member.isfile() and member.name.endswith(".py")
        }


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node.end_lineno - node.lineno + 1
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")


def any_annotations(tree: ast.AST) -> int:
    """Uses of the name `Any` outside import lines (annotations, casts, aliases)."""
    return sum(1 for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "Any")


def shape(files: dict[str, str], most: int) -> dict[str, object]:
    longest: list[tuple[int, str]] = []
    any_count = 0
    code_lines = 0
    for path, text in files.items():
        tree = ast.parse(text)
        any_count += any_annotations(tree)
        code_lines += sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))
        module = path.removesuffix(".py").replace("/", ".")
        longest += [(lines, f"{module}:{name}") for name, lines in functions(tree)]
    longest.sort(reverse=True)
    root_modules = sorted(p.split("/")[1] for p in files if p.count("/") == 1 and not p.endswith("__init__.py"))
    return {
        "files": len(files),
        "lines": sum(text.count("\n") for text in files.values()),
        "code_lines": code_lines,
        "any": any_count,
        "functions": len(longest),
        "functions_over_50_lines": sum(1 for lines, _ in longest if lines > 50),
        "longest_functions": [{"name": name, "lines": lines} for lines, name in longest[:most]],
        "root_modules": root_modules,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", action="append", help="a commit to measure (repeat for several; default: the tree)")
    parser.add_argument("--most", type=int, default=10, help="how many of the longest functions to list")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    revs = args.rev or [None]
    print(json.dumps({rev or "working tree": shape(sources_at(rev, root), args.most) for rev in revs}, indent=1))


if __name__ == "__main__":
    main()
