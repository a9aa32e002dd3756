"""The dialogs: each is built from the Application (controllers and state), never from the window.

A new dialog: a module here taking ``(app, parent)``, opened from an action's handler (the window's
Prompts implementation in geodesk.qt.main_window).
"""
