"""Check that every Python file of the project runs on Python 3.9, the exam's interpreter.

    python tools/check_py39.py      # run it with Python 3.9 (tools/run_tests.sh exam does)

Byte-compiling with 3.9 catches new syntax (`match`, parenthesised context managers, ...). What compiles
but fails at run time is looked for in the syntax tree: a `X | Y` type union outside an annotation (3.10+),
and annotations that 3.9 would evaluate because the file lacks `from __future__ import annotations`.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPE_NAMES = {"int", "float", "str", "bool", "bytes", "list", "dict", "tuple", "set", "type", "Path", "None"}


def is_type_like(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    if isinstance(node, ast.Name) and node.id in TYPE_NAMES:
        return True
    if isinstance(node, ast.Subscript):   # list[int], Optional[str], ...
        return True
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and is_type_like(node.left)


def problems_in(path: Path) -> list:
    source = path.read_text(encoding="utf-8")
    try:
        compile(source, str(path), "exec")
    except SyntaxError as e:
        return [f"{path}:{e.lineno}: does not compile on Python {sys.version.split()[0]}: {e.msg}"]
    tree = ast.parse(source)
    has_future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
                     any(a.name == "annotations" for a in n.names) for n in tree.body)
    annotations = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
            annotations.update(id(a.annotation) for a in args if a.annotation is not None)
            if node.returns is not None:
                annotations.add(id(node.returns))
        elif isinstance(node, ast.AnnAssign):
            annotations.add(id(node.annotation))
    found = []
    if annotations and not has_future:
        found.append(f"{path}: has annotations but no `from __future__ import annotations`")
    inside_annotation = set()
    for node in ast.walk(tree):
        if id(node) in annotations:
            inside_annotation.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and id(node) not in inside_annotation
                and is_type_like(node.left) and is_type_like(node.right)):
            found.append(f"{path}:{node.lineno}: `X | Y` type union at run time needs Python 3.10; use Optional/Union")
    return found


def main() -> int:
    files = sorted(p for p in ROOT.rglob("*.py") if not any(part.startswith(".") for part in p.relative_to(ROOT).parts))
    problems = [problem for path in files for problem in problems_in(path)]
    for problem in problems:
        print(problem)
    print(f"check_py39: {len(files)} files checked with Python {sys.version.split()[0]}, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
