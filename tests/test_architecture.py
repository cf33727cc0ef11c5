"""The architecture contracts in pyproject.toml (`[tool.importlinter]`), checked by the real
`lint-imports`: assistants -> domains -> shared with the domains independent, the layers
inside shared, and no import cycles between siblings anywhere in shared. Each contract is
also shown to fail: a copy of the source tree gets one deliberately wrong import."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["assistants", "finance", "medical", "legal", "shared"]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # Only the tree under cwd is analysed: it comes first on the path.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT), "--no-cache", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_tree_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def _python_only(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))}


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_python_only)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize("contract, module, wrong_import, named", [
    # the core reaching up to the CLI; one domain using another
    ("top", "shared/settings.py", "import assistants.cli", "shared.settings -> assistants.cli"),
    ("top", "finance/__init__.py", "import legal", "finance -> legal"),
    # the database reaching up to chat; a part calling back into the root
    ("shared-layers", "shared/db/__init__.py", "import shared.chat", "shared.db -> shared.chat"),
    ("shared-layers", "shared/chat/engine.py", "import shared.runtime", "shared.chat.engine -> shared.runtime"),
    # the engine imports the prompt module: the reverse closes a cycle
    ("shared-acyclic", "shared/chat/prompt.py", "from . import engine", ".prompt -> .engine"),
])
def test_each_contract_fails_on_a_wrong_import(tree_copy, contract, module, wrong_import, named):
    with (tree_copy / module).open("a") as f:
        f.write(f"\n{wrong_import}  # deliberately wrong\n")
    result = lint(tree_copy, "--contract", contract)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr
    assert named in result.stdout
