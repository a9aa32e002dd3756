"""Rebuilds the geodesk model: MG-Geo style data, projector pretraining, QLoRA, GRPO, evaluation.

Training imports geodesk (prompts, parser, metrics, model package format); geodesk never imports
training.
"""
