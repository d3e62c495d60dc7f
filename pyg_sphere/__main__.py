"""``python -m pyg_sphere`` runs the ``pyg-sphere`` command line."""
import sys

from .cli import main

sys.exit(main())
