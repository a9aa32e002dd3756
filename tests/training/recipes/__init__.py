"""Tests of the training recipes (torchtune style: tiny model, pinned losses)."""
