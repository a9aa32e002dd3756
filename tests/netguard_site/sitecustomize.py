"""Loaded first by every Python process the tests start: the same network guard as the tests.

tests/conftest.py puts this folder first on each child's PYTHONPATH and sets GEODESK_NETWORK_GUARD.
Another sitecustomize later on the path (a test's own) is still run after the guard is installed.
"""

import importlib.util
import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path) -> None:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


if os.environ.get("GEODESK_NETWORK_GUARD") == "1":
    _load("geodesk_tests_network_guard", _HERE.parent / "network_guard.py")
    sys.modules["geodesk_tests_network_guard"].install()

for _entry in sys.path:
    _folder = Path(_entry or ".").resolve()
    if _folder != _HERE and (_folder / "sitecustomize.py").is_file():
        _load("_next_sitecustomize", _folder / "sitecustomize.py")
        break
