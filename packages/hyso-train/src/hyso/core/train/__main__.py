"""``python -m hyso.core.train`` runs the ``hyso`` command line (also under torchrun)."""

import sys

from hyso.core.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
