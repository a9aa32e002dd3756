"""Presentations of a case that need no Qt: the offline map page, the prediction history table.

The Qt layer (``geodesk.qt``) shows what these modules compute; exports and tests call them directly.
"""
