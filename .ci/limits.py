#!/usr/bin/env python3
"""House limits for all of wizard/ (the TUI included): every module
under 400 lines, every function under 60, and no block of statements repeated (the same
five or more consecutive statements, imports aside, compared as syntax trees, in two places).

Usage: python3 .ci/limits.py [ROOT]   (exit 1 and one line per finding when a limit is broken)
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

MAX_MODULE_LINES = 400  # a module must be shorter
MAX_FUNCTION_LINES = 60  # a function (def line to its last line) must be shorter
MIN_DUPLICATE = 5  # consecutive statements that make a repeated block
EXCLUDED: tuple[str, ...] = ()  # packages under wizard/ exempt from these limits: none


def modules(root: Path) -> list[Path]:
    return sorted(p for p in (root / "wizard").rglob("*.py")
                  if p.relative_to(root / "wizard").parts[0] not in EXCLUDED)


def _bodies(tree: ast.AST) -> list[list[ast.stmt]]:
    out = []
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                out.append(body)
    return out


def findings(root: Path) -> list[str]:
    problems: list[str] = []
    blocks: dict[str, list[str]] = defaultdict(list)
    for path in modules(root):
        rel = path.relative_to(root)
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines >= MAX_MODULE_LINES:
            problems.append(f"{rel}: {lines} lines (a module must stay under {MAX_MODULE_LINES})")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length >= MAX_FUNCTION_LINES:
                    problems.append(f"{rel}:{node.lineno}: {node.name} is {length} lines "
                                    f"(a function must stay under {MAX_FUNCTION_LINES})")
        for body in _bodies(tree):
            for i in range(len(body) - MIN_DUPLICATE + 1):
                run = body[i:i + MIN_DUPLICATE]
                if any(isinstance(st, (ast.Import, ast.ImportFrom)) for st in run):
                    continue
                key = "\n".join(ast.dump(s) for s in run)
                blocks[key].append(f"{rel}:{run[0].lineno}")
    for places in blocks.values():
        if len(places) > 1:
            problems.append(f"repeated block of {MIN_DUPLICATE}+ statements at " + ", ".join(places))
    return problems


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    problems = findings(root)
    for line in problems:
        print(f"limits: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
