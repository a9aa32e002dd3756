"""The clue engine: deterministic, offline, explainable clues from a photo's text, metadata and sun.

Qt-free and store-free: OCR (:mod:`geodesk.clues.ocr`), script and language
(:mod:`geodesk.clues.languages`), phone numbers, domains and currencies
(:mod:`geodesk.clues.patterns`), place names (:mod:`geodesk.clues.places`), time zones
(:mod:`geodesk.clues.timezones`), the sun band (:mod:`geodesk.clues.sun`), the findings built from
them (:mod:`geodesk.clues.engine`) and their combination (:mod:`geodesk.clues.constraint`).
``geodesk.services.clue_engine`` stores and reviews them in a case.
"""
