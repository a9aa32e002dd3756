"""The desktop app (PySide6): the only package that imports Qt. It presents; the services decide.

Start it with ``geodesk`` (no command) or :func:`geodesk.qt.app.run_app`; see docs/adr/0007-desktop-app.md.
"""

from geodesk.qt.binding_guard import guard_singletons
from geodesk.qt.interpreter import share_the_gil

guard_singletons()  # before any Qt call: the bindings' lost references to None (binding_guard.py)
share_the_gil()  # the UI thread waits at most 1 ms for a worker's interpreter lock (interpreter.py)
