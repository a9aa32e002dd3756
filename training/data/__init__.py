"""MG-Geo style training data (GaGA section IV), in LLaVA conversation JSON (ADR 0010).

- ``meta``: Meta Part, direct-mode question + JSON answer per geotagged image;
- ``clues``: the country clue repository (resources/clues) and the Clue Part (teacher selection,
  review queue, accept-reviewed);
- ``dialog``: Dialog Part, CoT Deduction and CoT Introspection (the 25 km rule);
- ``cases``: confirmed findings of geodesk cases as training dialogs;
- ``validate``: checks a samples file (schema, images, placeholders, answers, token length);
- ``split``: location-aware train / validation split;
- ``common`` / ``metadata`` / ``teacher``: shared file formats, tables and teacher calls.
"""
