"""An import-linter contract type of our own: no circle between any two modules of the package.

import-linter's `layers` contract forbids upward imports, and `acyclic_siblings` circles between sibling packages;
neither sees a circle between modules of two services (ops/maintenance.py <-> backup/physical_restore.py was one),
which is what makes a module impossible to read, test or move alone. Every import counts, a lazy one inside a
function too. Named in pyproject.toml's `[tool.importlinter]`; `make lint` runs it with the others."""

from __future__ import annotations

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils
from importlinter.application.contract_utils import AlertLevel


class ModuleCyclesContract(Contract):
    """Kept when the import graph of `package` has no strongly connected component of two or more modules."""

    type_name = "module_cycles"

    package = fields.StringField()
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph, ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=AlertLevel.ERROR)
        package = str(self.package)
        modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
        cycles = [_a_cycle(graph, component) for component in _components(graph, modules) if len(component) > 1]
        return ContractCheck(kept=not cycles, warnings=list(removal.warnings),
                             metadata={"cycles": sorted(cycles)})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error("Import circle: " + " -> ".join(cycle))
            output.new_line()


def _components(graph: ImportGraph, modules: list[str]) -> list[list[str]]:
    """Tarjan's strongly connected components, without recursion."""
    inside = set(modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & inside) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if position < len(edges[node]):
                work.append((node, position + 1))
                nxt = edges[node][position]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def _a_cycle(graph: ImportGraph, component: list[str]) -> tuple[str, ...]:
    """The shortest circle through the component's first module, as a readable chain back to itself."""
    start = component[0]
    inside = set(component)
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph.find_modules_directly_imported_by(node) & inside):
            if nxt == start:
                return (*paths[node], start)
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return tuple(component)


__all__ = ["ModuleCyclesContract"]
