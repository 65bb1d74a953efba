"""pytest entry point: the harness plugin (options, target selection, session fixtures, reports)."""

pytest_plugins = ["host.hil.plugin"]
