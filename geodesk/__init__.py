"""geodesk: an offline photo-geolocation workstation.

The package is layered (see docs/adr/0001-layers.md): ``domain`` and ``geo`` are plain Python,
``store``/``evidence``/``engine``/``services``/``report`` are Qt-free, and ``qt`` only presents.
"""

__version__ = "0.1.0"
