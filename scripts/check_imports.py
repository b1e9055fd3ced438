#!/usr/bin/env python3
"""Check that kavka's imports point one way (docs/ARCHITECTURE.md, "Layers and imports").

Every module under src/kavka is parsed with ``ast``; nothing is imported or run.  Every
import counts: at module level, under ``if TYPE_CHECKING:``, and inside functions (a lazy
import is still a dependency).  The rules:

1. ``api-no-cluster``: no module under kavka/api/ imports kavka.cluster, kavka.replication,
   aetcd, or anything with "etcd" in its name: api/ sees the cluster through kavka.metadata.
   Nor does it reach the cluster node duck-typed, through an attribute named ``cluster``
   (``request.broker.cluster``): reported as ``MODULE -> .cluster``.
2. ``cluster-no-api``: no module under kavka/cluster/ or kavka/replication/ imports kavka.api
   or kavka.cli: they implement the metadata boundary, they do not call the handlers.
3. ``protocol-alone``: kavka/protocol/ imports nothing of kavka outside kavka.protocol, and
   neither asyncio nor os (it is sans-I/O: bytes in, objects out).
4. ``log-below``: kavka/log/ imports none of kavka.api, cluster, replication, server, cli, group.
5. ``cycle``: no import cycle between kavka's top-level parts (each subpackage, e.g. ``api``,
   and each top-level module, e.g. ``broker``), counting every import above.

A violation is ``RULE MODULE -> TARGET`` (``cycle`` names the parts: ``cycle api -> broker ->
api``).  Those listed in the known file (default: import_layers_known.txt next to this script,
one a line, ``#`` comments) are reported but do not fail the check; an import they name is
also left out of the cycle search.  Exit status: 0 when every violation is known, 1 otherwise.

    python3 scripts/check_imports.py [--src DIR] [--known FILE | --no-known]
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "kavka"
DEFAULT_SRC = Path(__file__).resolve().parent.parent / "src"
DEFAULT_KNOWN = Path(__file__).resolve().parent / "import_layers_known.txt"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. kavka.api.fetch
    target: str  # the imported module, e.g. kavka.cluster.node or aetcd.exceptions
    line: int
    lazy: bool  # inside a function
    attribute: bool = False  # not an import: an ``X.cluster`` use in api/ (rule 1)

    @property
    def subject(self) -> str:
        return f"{self.module} -> {'.cluster' if self.attribute else self.target}"


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str  # "MODULE -> TARGET", or the cycle's parts "api -> broker -> api"
    where: str  # file:line of an import that makes it

    @property
    def key(self) -> str:
        return f"{self.rule} {self.subject}"


# -- reading the tree ------------------------------------------------------------------------

def module_names(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package under ``src``."""
    names = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: set[str]) -> None:
        self.module, self.is_package, self.modules = module, is_package, modules
        self.depth = 0
        self.found: list[Import] = []

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _add(self, target: str, line: int, attribute: bool = False) -> None:
        self.found.append(Import(self.module, target, line, self.depth > 0, attribute))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(node, self.module, self.is_package)
        for alias in node.names:
            child = f"{base}.{alias.name}"
            # ``from kavka.cluster import node`` imports the module kavka.cluster.node
            self._add(child if child in self.modules else base, node.lineno)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "cluster" and part(self.module) == "api":
            self._add(f"{PACKAGE}.cluster", node.lineno, attribute=True)
        self.generic_visit(node)


def scan(src: Path) -> list[Import]:
    """Every import of every module of the package under ``src``."""
    files = module_names(src)
    modules = set(files)
    found: list[Import] = []
    for module, path in files.items():
        collector = _Collector(module, path.name == "__init__.py", modules)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        found += collector.found
    return found


def part(module: str) -> str | None:
    """The top-level part of kavka a module belongs to (``api``, ``broker``, ...); None outside."""
    names = module.split(".")
    if names[0] != PACKAGE:
        return None
    return names[1] if len(names) > 1 else PACKAGE


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# -- the rules -------------------------------------------------------------------------------

def _api_no_cluster(imp: Import) -> bool:
    return part(imp.module) == "api" and (
        part(imp.target) in ("cluster", "replication") or "etcd" in imp.target)


def _cluster_no_api(imp: Import) -> bool:
    return part(imp.module) in ("cluster", "replication") and part(imp.target) in ("api", "cli")


def _protocol_alone(imp: Import) -> bool:
    if part(imp.module) != "protocol":
        return False
    outside_kavka = part(imp.target) is None
    if outside_kavka:
        return imp.target.split(".")[0] in ("asyncio", "os")
    return not _within(imp.target, f"{PACKAGE}.protocol")


def _log_below(imp: Import) -> bool:
    return part(imp.module) == "log" and part(imp.target) in (
        "api", "cluster", "replication", "server", "cli", "group")


LAYER_RULES = {"api-no-cluster": _api_no_cluster, "cluster-no-api": _cluster_no_api,
               "protocol-alone": _protocol_alone, "log-below": _log_below}


def where(imp: Import, src: Path | None = None) -> str:
    path = imp.module.replace(".", "/")
    if src is not None and (src / path).is_dir():
        path += "/__init__"
    notes = [note for note, yes in (("in a function", imp.lazy), ("an attribute", imp.attribute)) if yes]
    return f"{path}.py:{imp.line}" + (f" ({', '.join(notes)})" if notes else "")


def layer_violations(imports: list[Import], src: Path | None = None) -> list[Violation]:
    """Rules 1-4, one violation per (rule, module, target), at its first import."""
    seen: dict[str, Violation] = {}
    for imp in imports:
        for rule, broken in LAYER_RULES.items():
            if broken(imp):
                v = Violation(rule, imp.subject, where(imp, src))
                seen.setdefault(v.key, v)
    return list(seen.values())


def part_graph(imports: list[Import]) -> dict[str, dict[str, Import]]:
    """part -> {part it imports: the first import that does so}."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if imp.attribute:
            continue
        a, b = part(imp.module), part(imp.target)
        if a is not None and b is not None and a != b:
            graph.setdefault(a, {}).setdefault(b, imp)
        if a is not None:
            graph.setdefault(a, {})
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one part, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _shortest_cycle(graph: dict[str, dict[str, Import]], start: str, members: set[str]) -> list[str]:
    """A shortest path start -> ... -> start inside one component (breadth first)."""
    previous: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph.get(v, {})):
                if w == start:
                    path = [v]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    return path[::-1] + [start]
                if w in members and w not in previous:
                    previous[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError("a strongly connected component has a cycle through each member")


def cycles(imports: list[Import], src: Path | None = None) -> list[Violation]:
    """Rule 5: one cycle per group of parts that import each other, with the imports that make it."""
    graph = part_graph(imports)
    found = []
    for component in _strongly_connected(graph):
        path = _shortest_cycle(graph, component[0], set(component))
        steps = "; ".join(where(graph[a][b], src) + f" imports {graph[a][b].target}"
                          for a, b in zip(path, path[1:]))
        found.append(Violation("cycle", " -> ".join(path), steps))
    return found


# -- the check -------------------------------------------------------------------------------

@dataclass
class Report:
    new: list[Violation]
    known: list[Violation]
    stale: list[str]  # known entries that no longer match anything

    @property
    def ok(self) -> bool:
        return not self.new


def read_known(path: Path | None) -> list[str]:
    if path is None or not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append(" ".join(line.split()))
    return entries


def check(src: Path, known: list[str] = ()) -> Report:
    imports = scan(src)
    layered = layer_violations(imports, src)
    known_set = set(known)
    # a known layer violation is also left out of the cycle search, so the cycle it
    # makes (e.g. api -> cluster -> api) is reported once, as that violation
    tolerated = {v.subject for v in layered if v.key in known_set}
    remaining = [i for i in imports if i.subject not in tolerated]
    found = layered + cycles(remaining, src)
    keys = {v.key for v in found}
    return Report(new=[v for v in found if v.key not in known_set],
                  known=[v for v in found if v.key in known_set],
                  stale=[k for k in known if k not in keys])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help="the folder holding kavka/")
    parser.add_argument("--known", type=Path, default=DEFAULT_KNOWN, help="violations tolerated for now")
    parser.add_argument("--no-known", action="store_true", help="tolerate nothing")
    args = parser.parse_args(argv)
    known = [] if args.no_known else read_known(args.known)
    report = check(args.src, known)
    for v in report.new:
        print(f"violation: {v.key}\n    at {v.where}")
    for v in report.known:
        print(f"known: {v.key}\n    at {v.where}")
    for k in report.stale:
        print(f"no longer violated (remove it from the known list): {k}")
    print(f"{len(report.new)} violations, {len(report.known)} known, {len(report.stale)} stale known entries")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
