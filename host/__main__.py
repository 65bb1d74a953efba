"""Entry point for `python -m host`."""

import sys

from host.cli import main

sys.exit(main())
