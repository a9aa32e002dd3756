"""GeoSynth: a synthetic geolocation world of street scenes whose cues are facts about real countries.

It exists so that the whole system can be proven without real photos or weights: the training recipes
must teach a small model to read its cues, hints must move the model's answers toward the truth, and a
new user gets a working interactive demo on a laptop. See docs/adr/0014-geosynth.md.

- ``cues``: the one table of facts the scenes are drawn from;
- ``world``: the table's cities resolved through the gazetteer (ground truth);
- ``scene``: planning and drawing one scene; ``generator``: writing a data set;
- ``mggeo``: MG-Geo style training data (meta, clue and dialog parts) from the generator's truth;
- ``demo``: the command sequence that trains, exports and evaluates the demo model.
"""
