"""The image pane (the window's centre): the selected item's original, decoded in a job, with the
regions pinned to its clues and hints; a drawn rectangle becomes ``state.pending_region``."""

from __future__ import annotations

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from geodesk.app import Application
from geodesk.domain.model import Evidence, Region
from geodesk.qt.image_viewer import ImageViewer, PinnedRegion, load_evidence_image
from geodesk.qt.workers import TaskContext, TaskRunner


class ImagePane(ImageViewer):
    def __init__(self, app: Application, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.state = app.state
        self._runner = runner
        self._request = 0
        self.region_drawn.connect(self._drawn)
        self.region_selected.connect(self._region_selected)
        app.state.watch("evidence", self._load)
        app.state.watch_any(("clues", "turns"), self._update_regions)
        app.state.watch("pending_region", self._pending_changed)
        app.state.watch("selected_clue", self._highlight_clue)

    def _load(self, evidence: Evidence | None) -> None:
        self._request += 1
        self.set_image(None)
        store = self.app.ctx.store
        if evidence is None or store is None:
            return
        request, orientation, sha = self._request, evidence.orientation, evidence.sha256

        def job(ctx: TaskContext) -> QImage | str:
            # Finding the original lists its folder (no database): done here, off the UI thread.
            try:
                path = store.evidence_file(sha)
            except (LookupError, OSError, ValueError) as exc:
                return f"the original of {evidence.original_name} is missing: {exc}"
            return load_evidence_image(path, orientation)

        def done(image: QImage | str) -> None:
            if request != self._request:  # a newer selection wins
                return
            if isinstance(image, str):
                self.app.ctx.say("Image", image)
            else:
                self.set_image(image)
                self._update_regions()

        self._runner.start(
            job, "decode image", on_result=done,
            on_failed=lambda m: self.app.ctx.say("Image", f"{evidence.original_name} {m}"),
        )

    def _update_regions(self) -> None:
        pinned: list[PinnedRegion] = []
        for clue in self.state.clues:
            if clue.region is not None and clue.id is not None:
                label = f"{clue.category}: {clue.text}"
                pinned.append(PinnedRegion(f"clue:{clue.id}", clue.region, label, "clue"))
        for turn in self.state.turns:
            for i, hint in enumerate(turn.hints):
                if hint.region is not None:
                    key = f"hint:{turn.index}:{i}"
                    pinned.append(PinnedRegion(key, hint.region, f"turn {turn.number}: {hint.text}", "hint"))
        pending = self.pending_region
        self.set_regions(pinned)
        if pending is not None:
            self.set_pending(pending)

    def _drawn(self, region: Region) -> None:
        self.state.pending_region = region
        self.app.ctx.status("Region drawn: pin it with a clue (Clues → Add) or a region note (Hints)")

    def _pending_changed(self, region: Region | None) -> None:
        if region is None:
            self.clear_pending()

    def _region_selected(self, key: str) -> None:
        if key.startswith("clue:"):
            self.state.selected_clue = int(key.split(":", 1)[1])

    def _highlight_clue(self, clue_id: int | None) -> None:
        clue = next((c for c in self.state.clues if c.id == clue_id), None)
        self.highlight(None if clue is None or clue.region is None else f"clue:{clue.id}")
