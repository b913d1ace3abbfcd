"""``python -m jinit ...`` runs the ``jinit`` command."""

import sys

from jinit._cli import main

if __name__ == "__main__":
    sys.exit(main())
