"""MG-Geo style training data (GaGA section IV), in LLaVA conversation JSON (ADR 0010).

- ``photos``: photos with GPS -> the metadata table the other parts read;
- ``meta``: Meta Part, direct-mode question + JSON answer per geotagged image;
- ``clues``: the country clue repository (resources/clues) and the Clue Part (teacher selection,
  review queue, accept-reviewed);
- ``country_facts``: structured facts per country (CLDR, libphonenumber, ccTLD, currencies, tz,
  hemisphere, driving side), merged under the hand-written clues;
- ``dialog``: Dialog Part, CoT Deduction and CoT Introspection (the 25 km rule), plus hint-turn
  samples in the app's session format (``hint_turns``);
- ``interactive``: the +Q / +QA evaluation set and GRPO prompts with clue entities from reviewed clues;
- ``mix``: the stage-2 mixture in the paper's proportions or a recipe;
- ``cases``: confirmed findings of geodesk cases as training dialogs;
- ``validate``: checks a samples file (schema, images, placeholders, answers, token length);
- ``split``: location-aware train / validation split;
- ``common`` / ``metadata`` / ``teacher``: shared file formats, tables and teacher calls.
"""
