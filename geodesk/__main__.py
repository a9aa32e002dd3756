"""``python -m geodesk``: the same as the ``geodesk`` command."""

import sys

from geodesk.cli import main

sys.exit(main())
