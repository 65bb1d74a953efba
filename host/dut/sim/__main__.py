"""Entry point for `python -m host.dut.sim` (the simulated DUT process)."""

import sys

from host.dut.sim.process import main

sys.exit(main())
