"""The kernel is layered: runtime ← bindings ← domain ← contracts. A module imports only its own
layer and the ones before it, so e.g. the router never learns about D1 and the public API models
never reach into an adapter. Code used by one Worker lives in that Worker, not here."""

from __future__ import annotations

import ast
from pathlib import Path

KERNEL = Path(__file__).resolve().parents[2] / "workers" / "kernel"
LAYERS = ["runtime", "bindings", "domain", "contracts"]


def _kernel_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kernel"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("kernel"))
    return found


def test_every_kernel_module_sits_in_a_layer() -> None:
    loose = [p.name for p in KERNEL.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"kernel modules outside a layer: {loose}"
    assert sorted(p.name for p in KERNEL.iterdir() if p.is_dir() and p.name != "__pycache__") == (
        sorted(LAYERS)
    )


def test_layers_import_only_themselves_and_the_layers_before_them() -> None:
    wrong = []
    for rank, layer in enumerate(LAYERS):
        allowed = set(LAYERS[: rank + 1])
        for path in sorted((KERNEL / layer).glob("*.py")):
            for module in _kernel_imports(path):
                parts = module.split(".")
                if len(parts) < 2 or parts[1] not in allowed:
                    wrong.append(f"{layer}/{path.name} imports {module}")
    assert wrong == []


def test_the_kernel_imports_no_worker() -> None:
    workers = {"gateway", "rag", "ingest", "llm"}
    wrong = [
        f"{path.relative_to(KERNEL)} imports {module}"
        for path in KERNEL.rglob("*.py")
        for module in _imports_any(path)
        if module.split(".")[0] in workers
    ]
    assert wrong == []


def _imports_any(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names
