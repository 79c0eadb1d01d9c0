"""Take a PNG screenshot of a report's leaderboard.html in headless Chromium, with the network off.

Run from the repository root (``scripts/report_example.sh`` does, after rebuilding the example)::

    .venv/bin/python scripts/screenshot_report.py docs/report_example/leaderboard.html

writes ``docs/report_example/leaderboard.png`` (``--out`` to choose), the top of the page at
``--size`` pixels. The browser is Debian's ``chromium`` (``scripts/bootstrap.sh`` installs it as
root) or the one named by ``LM_EVAL_LEAKAGE_BROWSER``; it runs with no proxy and every host name
unresolvable, as the page needs nothing from the network. Exit status 2 when no browser is found,
1 when it fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
    "--no-first-run", "--no-default-browser-check", "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)


def find_browser() -> str | None:
    """``$LM_EVAL_LEAKAGE_BROWSER`` if set, else the first of BROWSER_NAMES on PATH."""
    named = os.environ.get("LM_EVAL_LEAKAGE_BROWSER")
    if named:
        return named if os.access(named, os.X_OK) else None
    return next((path for name in BROWSER_NAMES if (path := shutil.which(name))), None)


def screenshot(browser: str, page: Path, out: Path, size: tuple[int, int]) -> None:
    """Write the top ``size`` (width, height) pixels of ``page`` to ``out`` as PNG.

    Raises:
        RuntimeError: The browser failed or wrote no file (its output is in the message).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
             f"--screenshot={out.resolve()}", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"{browser} exited {done.returncode} without writing {out}:\n{done.stderr[-3000:]}")


def size_arg(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` in pixels."""
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, nargs="?", default=Path("docs/report_example/leaderboard.html"))
    parser.add_argument("--out", type=Path, help="PNG file (default: leaderboard.png beside the page)")
    parser.add_argument("--size", type=size_arg, default=(1400, 1000), help="WIDTHxHEIGHT (default 1400x1000)")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"screenshot_report: no page at {args.page}", file=sys.stderr)
        return 2
    browser = find_browser()
    if browser is None:
        print("screenshot_report: no Chromium found (apt-get install chromium, or set LM_EVAL_LEAKAGE_BROWSER)",
              file=sys.stderr)
        return 2
    out = args.out or args.page.with_suffix(".png")
    try:
        screenshot(browser, args.page, out, args.size)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"screenshot_report: {error}", file=sys.stderr)
        return 1
    print(f"screenshot_report: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
