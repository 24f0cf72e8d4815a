"""``python -m hyso.core.train`` runs the ``hyso`` command line."""

import sys

from hyso.core.train.cli import main

sys.exit(main())
