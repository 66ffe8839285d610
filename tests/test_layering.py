"""The package's layers import downward only (see the README's Layout), read from the source, function-level imports
included: a new upward edge (an adapter reaching for an observer, a consumer for the runtime) fails here."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pbx_codes"

#: Lowest first. A package may import its own layer's packages and every layer below, never one above.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__init__", "__version__", "model", "errors", "text", "timeouts", "status", "config",
               "compiled"}),
    frozenset({"protocols"}),
    frozenset({"catalog", "resolve"}),
    frozenset({"observers"}),
    frozenset({"adapters"}),
    frozenset({"writeback", "sinks", "store", "enrich", "quality", "backfill", "console"}),
    frozenset({"runtime", "testbed"}),
    frozenset({"cli", "__main__"}),
)
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}
#: Module-level exceptions, each with its reason.
ALLOWED = {
    # `config check` shows a store URL with the store's own password redactor (a leaf: it imports nothing).
    ("config", "pbx_codes.store.dsn"),
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(package: Path = PACKAGE) -> list[tuple[str, str, str]]:
    """(importing unit, imported module, where) for every import of pbx_codes inside the package."""
    found = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        unit = _unit(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("pbx_codes"):
                base = node.module or ""
                names = [f"{base}.{a.name}" for a in node.names] if base == "pbx_codes" else [base]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("pbx_codes")]
            found += [(unit, name, f"{path.relative_to(package.parent)}:{node.lineno}") for name in names]
    return found


def test_every_package_has_a_layer() -> None:
    units = {_unit(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    assert units - set(RANK) == set()


def test_packages_import_only_their_layer_and_the_layers_below() -> None:
    upward = [f"{where}: {unit} (layer {RANK[unit]}) imports {name} (layer {RANK[_unit(name)]})"
              for unit, name, where in imports()
              if RANK[_unit(name)] > RANK[unit] and (unit, name) not in ALLOWED]
    assert upward == []


def test_adapters_only_move_bytes() -> None:
    """The asyncio layer knows no PBX and no consumer: nothing from observers, writeback or the runtime."""
    assert [(name, where) for unit, name, where in imports()
            if unit == "adapters" and _unit(name) in {"observers", "writeback", "runtime", "config"}] == []


def test_the_reading_finds_function_level_and_package_imports(tmp_path: Path) -> None:
    """What the old listeners did from adapters/ (a function-level import of writeback), and `from pbx_codes import
    app`, are both seen."""
    package = tmp_path / "pbx_codes"
    (package / "adapters").mkdir(parents=True)
    (package / "adapters" / "listener.py").write_text(
        "def run():\n    from pbx_codes.writeback.agi_annotate import make_routes\n    from pbx_codes import cli\n")
    found = [(unit, name) for unit, name, _ in imports(package)]
    assert found == [("adapters", "pbx_codes.writeback.agi_annotate"), ("adapters", "pbx_codes.cli")]
