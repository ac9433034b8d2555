"""The layering described in docs/architecture.md, enforced by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    out = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_importing_reflectnb_imports_nothing_heavy():
    code = ("import reflectnb, reflectnb.api, sys; "
            "print(sorted(m for m in ('torch','transformers','duckdb','anywidget','altair','pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_layers_contract_names_every_module_of_the_package():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    package = ROOT / "reflectnb"
    modules = {f"reflectnb.{p.stem if p.is_file() else p.name}" for p in package.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert modules - layered == set(), "modules outside the layers contract (add them to pyproject.toml)"
    assert layered - modules == set(), "the contract names modules that do not exist"
