"""The docks: each is built from the Application (its controllers and its state), never from the window.

A dock subscribes to the :class:`~geodesk.app.state.AppState` fields it shows and forwards its
widget's signals to a controller. The window only places the docks (geodesk.qt.main_window). A new
dock: a module here with a :class:`geodesk.qt.docks.base.Dock` subclass taking ``(app, parent)``
(plus the Qt runner when it decodes or builds pages), one line in ``MainWindow.__init__`` that places
it, and wiring tests in tests/qt/test_docks.py. Docks never import one another or the window
(import-linter contracts).
"""
