"""User-facing errors: every message names the problem and how to fix it."""


class HarnessError(Exception):
    """Bad input or environment the user can fix. The CLI prints it as one line and exits 2."""
