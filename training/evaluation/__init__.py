"""Evaluation with the papers' protocols: GaGA's DIRE / HIER modes, +Q / +QA, metrics and a report.

- :mod:`training.evaluation.io`: truth CSV, predictions JSONL (resumable), dialogs JSONL;
- :mod:`training.evaluation.generation`: batched (hf) or concurrent (remote) answering;
- :mod:`training.evaluation.modes`: DIRE, HIER and the Table III variants;
- :mod:`training.evaluation.runner`: answer -> score (``geodesk.geo.metrics``) -> report;
- :mod:`training.evaluation.report`: Markdown + SVG beside GaGA's published rows.
"""
