"""The Qt-free application layer: evented state, one controller per area, jobs, actions as data.

``geodesk.app`` sits between the views (``geodesk.qt``) and the use cases (``geodesk.services``)::

    cli  >  qt  >  app  >  services  >  report | evidence | engine  >  store  >  geo  >  domain

- :mod:`geodesk.app.state`: :class:`AppState`, an evented dataclass (psygnal). Views subscribe to its
  field events; nothing refreshes a view by hand.
- :mod:`geodesk.app.controllers`: one controller per area (cases, evidence and import, clues,
  findings, models, sessions and replay, batch). Each calls the services and writes the state.
- :mod:`geodesk.app.jobs`: the job runner protocol; :class:`SyncRunner` runs jobs at once (tests, no
  display), ``geodesk.qt.workers.TaskRunner`` runs them on the Qt thread pool.
- :mod:`geodesk.app.actions`: the app's actions as data (text, shortcut, enabled-when, handler).
- :class:`geodesk.app.application.Application` builds the state and the controllers together.

Nothing here imports PySide6 (an import-linter contract says so).
"""

from geodesk.app.application import Application
from geodesk.app.jobs import JobCancelled, JobRunner, SyncRunner
from geodesk.app.state import AppState

__all__ = ["AppState", "Application", "JobCancelled", "JobRunner", "SyncRunner"]
