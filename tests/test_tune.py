"""The ``tune`` extra's boundary: the trainer never imports JAX, and without JAX the tune
package says how to get it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vidcls

SRC = Path(vidcls.__file__).parent


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_the_trainer_and_vidcls_train_never_import_jax():
    """Every training module but ``tune``, and the command's own module, imported: no JAX."""
    r = python(
        "import importlib, pkgutil, sys\n"
        "import vidcls.training, vidcls.cli.train, vidcls.cli\n"
        "for m in pkgutil.iter_modules(vidcls.training.__path__, 'vidcls.training.'):\n"
        "    if m.name != 'vidcls.training.tune':\n"
        "        importlib.import_module(m.name)\n"
        "try:\n"
        "    vidcls.cli.main(['train', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'jax'))\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_only_the_tune_package_imports_itself():
    """No module outside ``training/tune`` imports it (so nothing else can pull in JAX)."""
    tune = SRC / "training" / "tune"
    for path in SRC.rglob("*.py"):
        if tune in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            assert not any(n == "tune" or n.endswith(".tune") for n in names), path
            assert not any(n.split(".")[0] == "jax" for n in names), path


def test_without_jax_the_tune_package_says_how_to_install_it():
    r = python(
        "import sys\n"
        "sys.modules['jax'] = None  # as if it were not installed\n"
        "try:\n"
        "    import vidcls.training.tune\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    assert r.returncode == 0, r.stderr
    assert "ImportError:" in r.stdout and "pip install 'vidcls[tune]'" in r.stdout


def test_without_jax_the_command_is_one_clear_line_at_the_end(tmp_path):
    r = python(
        "import runpy, sys\n"
        "sys.modules['jax'] = None\n"
        "sys.argv = ['tune', '--help']\n"
        "runpy.run_module('vidcls.training.tune', run_name='__main__')\n"
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "ImportError: vidcls.training.tune fine-tunes in JAX, which is not installed: "
        "pip install 'vidcls[tune]'"
    )
