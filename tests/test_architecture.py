"""Package hygiene, checked on the source: the layers of docs/architecture.md import only
downwards, no cycle between top-level packages, imports at module top (except optional heavy
dependencies), and modules of a reviewable size."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mri_unfold", "natural_cs", "benchmarks")
#: Heavy or optional dependencies that may be imported inside a function, when used.
LAZY_OK = {"sigpy", "matplotlib", "finufft", "cufinufft", "torchkbnufft", "ismrmrd",
           "twixtools", "torch._dynamo"}
MAX_LINES = 400
#: The layers of mri_unfold, bottom to top; a module may import its own layer and lower ones.
LAYERS = [
    {"errors", "fft", "complex_channels", "image_ops", "metrics", "atomic", "outputs", "npy_files", "shared_data", "wavelets",
     "cpu_allocator", "device", "precision", "tables", "plugins", "memory", "__init__",
     "__version__"},
    {"operators", "masks", "trajectories"},
    {"models", "fastpath", "losses", "baselines", "solvers", "auto_lambda"},
    {"data"},
    {"checkpoints", "reconstruct", "figures"},
    {"serving"},
    {"evaluation"},
    {"training"},
    {"studies"},
    {"cli", "__main__"},
]


def _sources():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def _imports(path: Path):
    """(module name, lineno, at module top?) of every import statement in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(ROOT).with_suffix("")
    pkg_parts = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            for a in node.names:
                full = f"{name}.{a.name}" if node.module is None else name
                yield full, node.lineno, id(node) in top_level


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "mri_unfold":
        return None
    head = parts[1] if len(parts) > 1 else "__init__"
    for i, layer in enumerate(LAYERS):
        if head in layer:
            return i
    raise AssertionError(f"{module}: not in any layer of the architecture")


def test_no_cycle_between_top_level_packages():
    edges = set()
    for path in _sources():
        src = path.relative_to(ROOT).parts[0]
        for name, line, _ in _imports(path):
            dst = name.split(".")[0]
            if dst in PACKAGES and dst != src:
                edges.add((src, dst, f"{path.relative_to(ROOT)}:{line}"))
    pairs = {(a, b) for a, b, _ in edges}
    assert ("mri_unfold", "natural_cs") not in pairs, [e for e in edges if e[0] == "mri_unfold"]
    cycles = [(a, b) for a, b in pairs if (b, a) in pairs]
    assert not cycles, sorted(edges)


def test_layers_import_only_downwards():
    bad = []
    for path in sorted((ROOT / "mri_unfold").rglob("*.py")):
        here = _layer(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for name, line, _ in _imports(path):
            there = _layer(name)
            if there is not None and there > here:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_imports_at_module_top_except_heavy_optional_ones():
    bad = []
    for path in _sources():
        for name, line, top in _imports(path):
            if not top and name.split(".")[0] not in LAZY_OK and name not in LAZY_OK:
                bad.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("pkg", ["mri_unfold", "natural_cs"])
def test_modules_stay_reviewable(pkg):
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / pkg).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long
