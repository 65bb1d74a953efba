"""User-facing errors: every message names the problem and how to fix it."""


class HarnessError(Exception):
    """Bad input or environment the user can fix. The CLI prints it as one line and exits 2."""


def require_writable_folder(folder, option: str) -> None:
    """Create `folder` if needed and prove it takes a file, else a HarnessError naming `option` and the fix."""
    from pathlib import Path

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"{option} {folder} is not writable ({exc.strerror or exc}); pass a folder you can "
                           "write to") from None
