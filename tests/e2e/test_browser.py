"""The report's ``leaderboard.html`` opened in a real headless Chromium with the network off.

The page claims to be self-contained (inline CSS, JavaScript and SVG) and sortable by clicking a
column header. Here a report is built from the golden run, Chromium (Debian's ``chromium``; its
path may be given in ``LM_EVAL_LEAKAGE_BROWSER``) opens the file with no proxy and every host name
unresolvable, and the test drives it over the DevTools protocol on a pipe (``--remote-debugging-pipe``,
no driver, no extra package): every request the page makes is intercepted and recorded (only
``file:`` and ``data:`` ones are let through), header clicks are real mouse events, and the row
order is read from the DOM before and after each click.

Without a browser the tests skip, or fail when ``LM_EVAL_LEAKAGE_REQUIRE_BROWSER=1`` (as in CI).
``scripts/bootstrap.sh`` installs ``chromium`` with apt-get when it can.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.make_golden import GOLDEN

from lm_eval_leakage.report import cli

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
REQUIRE_BROWSER = "LM_EVAL_LEAKAGE_REQUIRE_BROWSER"
BROWSER_PATH = "LM_EVAL_LEAKAGE_BROWSER"
LOCAL_SCHEMES = ("file:", "data:")
TIMEOUT = 60.0

# Headless, no proxy, every host name unresolvable, and none of the browser's own background traffic.
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-pipe",
    "--no-first-run", "--no-default-browser-check", "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--window-size=1600,1000",
)

# Where a page names a URL it would load: an attribute or CSS.
LOADING_ATTRIBUTE = re.compile(r"""\b(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*https?:""",
                               re.IGNORECASE)
CSS_LOAD = re.compile(r"""(?:url\(\s*["']?|@import\s+["']?)\s*https?:""", re.IGNORECASE)
WEB_ADDRESS = re.compile(r"https?://[^\s\"'<>)]*", re.IGNORECASE)
# URLs that only name things: XML namespaces and the SVG figure's RDF metadata (matplotlib writes both).
NAMESPACE = re.compile(r"""\sxmlns(?::\w+)?\s*=\s*"[^"]*\"""")
SVG_METADATA = re.compile(r"<metadata>.*?</metadata>", re.DOTALL)


def find_browser() -> str | None:
    """The Chromium to use: ``$LM_EVAL_LEAKAGE_BROWSER``, else the first of BROWSER_NAMES on PATH."""
    named = os.environ.get(BROWSER_PATH)
    if named:
        return named if os.access(named, os.X_OK) else None
    return next((path for name in BROWSER_NAMES if (path := shutil.which(name))), None)


def _high_pipe() -> tuple[int, int]:
    """A pipe whose two ends are close-on-exec and numbered 10 or above (clear of fds 3 and 4)."""
    read, write = os.pipe()
    ends = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (read, write))
    os.close(read)
    os.close(write)
    return ends  # type: ignore[return-value]


# Starts the browser (argv[3:]) with the pipe ends argv[1] and argv[2] moved to fds 3 and 4, where
# --remote-debugging-pipe reads commands and writes replies (a thread-safe stand-in for preexec_fn).
ON_FDS_3_AND_4 = ("import os, sys; commands, replies = map(int, sys.argv[1:3]); os.dup2(commands, 3); "
                  "os.dup2(replies, 4); os.close(commands); os.close(replies); os.execv(sys.argv[3], sys.argv[3:])")


class DevTools:
    """A headless Chromium driven over its DevTools pipe; it records every request its pages make.

    Requests are intercepted (``Fetch``): each one's (session, URL) is appended to :attr:`requests`,
    and only ``file:`` and ``data:`` ones are let through; the others fail and are also listed in
    :attr:`blocked`. Events are kept in :attr:`events`, handled while a command waits for its reply.
    """

    def __init__(self, browser: str, profile: Path) -> None:
        commands_read, self._commands = _high_pipe()
        self._replies, replies_write = _high_pipe()
        self.log = profile.parent / "browser.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", ON_FDS_3_AND_4, str(commands_read), str(replies_write),
                 browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(commands_read, replies_write),
            )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._last_id = 0
        self.requests: list[tuple[str | None, str]] = []
        self.blocked: list[tuple[str | None, str]] = []
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        """Send one command without waiting; its id."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._last_id

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send one command and return its result (events that come first are handled)."""
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._handle(message)

    def wait_for(self, event: str, session: str) -> dict[str, Any]:
        """Handle events until ``event`` comes for ``session``; its parameters."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if "method" in message:
                self._handle(message)
                if message["method"] == event and message.get("sessionId") == session:
                    return message.get("params", {})

    def pump(self, seconds: float) -> None:
        """Handle whatever events come in the next ``seconds`` (requests a page makes late)."""
        deadline = time.monotonic() + seconds
        while b"\0" in self._buffer or select.select([self._replies], [], [],
                                                      max(0.0, deadline - time.monotonic()))[0]:
            message = self._receive(deadline + TIMEOUT)
            if "method" in message:
                self._handle(message)

    def _receive(self, deadline: float) -> dict[str, Any]:
        """The next message from the browser (fails on timeout or when the browser has gone)."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise TimeoutError(f"no answer from the browser in {TIMEOUT:.0f} s; see {self.log}")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError(f"the browser closed its DevTools pipe; see {self.log}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _handle(self, message: dict[str, Any]) -> None:
        """Record an event; answer an intercepted request (only local schemes go through)."""
        self.events.append(message)
        if message["method"] != "Fetch.requestPaused":
            return
        params, session = message["params"], message.get("sessionId")
        url = params["request"]["url"]
        self.requests.append((session, url))
        if url.startswith(LOCAL_SCHEMES):
            self.send("Fetch.continueRequest", {"requestId": params["requestId"]}, session)
        else:
            self.blocked.append((session, url))
            self.send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                      session)

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not."""
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._commands)
            os.close(self._replies)


class Page:
    """One tab of a DevTools browser, opened on a URL with every request intercepted."""

    def __init__(self, devtools: DevTools, url: str) -> None:
        self.devtools = devtools
        self.target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = devtools.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})[
            "sessionId"]
        self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        self.call("Network.enable")
        self.call("Runtime.enable")
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})
        devtools.wait_for("Page.loadEventFired", self.session)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.devtools.call(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the middle of the element ``selector`` names."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def events(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every ``method`` event of this page so far."""
        return [e.get("params", {}) for e in self.devtools.events
                if e["method"] == method and e.get("sessionId") == self.session]

    def blocked_urls(self) -> list[str]:
        """The URLs of this page's requests that were stopped (not ``file:`` or ``data:``)."""
        return [url for session, url in self.devtools.blocked if session == self.session]

    def close(self) -> None:
        self.devtools.call("Target.closeTarget", {"targetId": self.target})

    def requested_urls(self) -> list[str]:
        """Every URL this page requested: intercepted (Fetch), seen by the Network domain, or timed."""
        intercepted = [url for session, url in self.devtools.requests if session == self.session]
        seen = [e["request"]["url"] for e in self.events("Network.requestWillBeSent")]
        timed = self.evaluate("performance.getEntries().map(e => e.name).filter(n => n.includes(':'))")
        return intercepted + seen + timed


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh report on the golden run, with its SVG figure inlined in the page."""
    out = tmp_path_factory.mktemp("browser") / "report"
    status = cli.main([str(GOLDEN / "run"), "--out", str(out), "--null-draws", "0", "--cases", "0",
                       "--formats", "svg"])
    assert status == 0
    return out / "leaderboard.html"


@pytest.fixture(scope="module")
def devtools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    """One headless Chromium for the module; skip without one (fail with LM_EVAL_LEAKAGE_REQUIRE_BROWSER=1)."""
    browser = find_browser()
    if browser is None:
        named = os.environ.get(BROWSER_PATH)
        where = f"${BROWSER_PATH}={named} is not executable" if named else (
            f"none of {', '.join(BROWSER_NAMES)} is on PATH")
        reason = (f"no Chromium found ({where}); install it with `apt-get install chromium`"
                  " (scripts/bootstrap.sh does so when run as root)")
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(f"{REQUIRE_BROWSER}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    driver = DevTools(browser, tmp_path_factory.mktemp("chromium") / "profile")
    yield driver
    driver.close()


@pytest.fixture
def page(devtools: DevTools, report: Path) -> Iterator[Page]:
    """The report's page freshly loaded in a new tab."""
    tab = Page(devtools, report.as_uri())
    yield tab
    tab.close()


def _csv_rows(path: Path) -> int:
    """Data rows of one of the report's CSV files (its lines less the header)."""
    return len(path.read_text(encoding="utf-8").splitlines()) - 1


def column_of(page: Page, table: int, header: str) -> int:
    """The index of the column headed ``header`` in the page's ``table``-th sortable table."""
    names = page.evaluate(f"Array.from(document.querySelectorAll('table.sortable')[{table}].tHead.rows[0]"
                          ".cells).map(c => c.textContent)")
    return names.index(header)


def rows(page: Page, table: int, column: int) -> list[tuple[str, str]]:
    """The body rows of the ``table``-th sortable table in DOM order: (row HTML, the column's sort text)."""
    return [(html, key) for html, key in page.evaluate(
        f"Array.from(document.querySelectorAll('table.sortable')[{table}].tBodies[0].rows).map(r => "
        f"[r.outerHTML, r.cells[{column}].getAttribute('data-value') ?? r.cells[{column}].textContent])")]


def sort_key(text: str) -> tuple[int, float | str]:
    """How the page orders a cell: numbers by value, before text (case-insensitive)."""
    if re.match(r"\s*[-+]?[0-9.]", text):
        try:
            return 0, float(text)
        except ValueError:
            pass
    return 1, text.strip().lower()


def is_sorted(keys: list[tuple[int, float | str]], *, descending: bool) -> bool:
    """Numbers before text either way; within each, ascending or descending."""
    pairs = list(itertools.pairwise(keys))
    if any(a[0] > b[0] for a, b in pairs):
        return False
    same = [(a[1], b[1]) for a, b in pairs if a[0] == b[0]]
    return all((a >= b) if descending else (a <= b) for a, b in same)  # type: ignore[operator]


def test_the_tables_render_with_their_rows(page: Page, report: Path) -> None:
    counts = page.evaluate("Array.from(document.querySelectorAll('table.sortable'))"
                           ".map(t => [t.tBodies[0].rows.length, t.getBoundingClientRect().height])")
    assert len(counts) == 3, "leaderboard, subjects and items tables"
    assert counts[0][0] == _csv_rows(report.parent / "leaderboard.csv") == 4
    assert counts[1][0] == _csv_rows(report.parent / "subjects.csv")
    assert counts[2][0] > 0
    assert all(height > 0 for _, height in counts), counts
    benchmarks = {key for _, key in rows(page, 0, column_of(page, 0, "benchmark"))}
    assert benchmarks == {"MMLU", "CMB", "custom", "leak_mmlu_control"}
    assert page.evaluate("document.querySelector('figure svg').getBoundingClientRect().width") > 0
    assert page.events("Runtime.exceptionThrown") == []


@pytest.mark.parametrize(("table", "header"), [
    (0, "items"), (0, "benchmark"), (2, "z (original)"), (2, "p (b cal.)"), (2, "subject"),
])
def test_a_header_click_sorts_and_a_second_click_reverses(page: Page, table: int, header: str) -> None:
    column = column_of(page, table, header)
    before = rows(page, table, column)
    th = f"document.querySelectorAll('table.sortable')[{table}].tHead.rows[0].cells[{column}]"
    page.evaluate(f"{th}.setAttribute('data-test-header', '1')")
    selector = "th[data-test-header]"
    page.click(selector)
    ascending = rows(page, table, column)
    assert sorted(ascending) == sorted(before), "a click must only reorder the rows"
    assert is_sorted([sort_key(k) for _, k in ascending], descending=False), [k for _, k in ascending]
    assert page.evaluate(f"{th}.getAttribute('data-dir')") == "asc"
    page.click(selector)
    descending = rows(page, table, column)
    assert sorted(descending) == sorted(before)
    assert is_sorted([sort_key(k) for _, k in descending], descending=True), [k for _, k in descending]
    assert page.evaluate(f"{th}.getAttribute('data-dir')") == "desc"
    assert ascending != before or descending != before, "neither click changed the order"


def test_nothing_is_fetched_from_outside(page: Page, report: Path) -> None:
    page.click("table.sortable th")
    page.devtools.pump(1.0)
    urls = page.requested_urls()
    assert report.as_uri() in urls, "the recorder must at least see the page itself"
    assert [u for u in urls if not u.startswith(LOCAL_SCHEMES)] == []
    assert page.blocked_urls() == []
    links = page.evaluate("Array.from(document.querySelectorAll('[src], [href], link, iframe, object, embed'))"
                          ".map(e => e.getAttribute('src') || e.getAttribute('href') || e.tagName)")
    assert [u for u in links if not u.startswith(("#", "data:"))] == []


def web_addresses(source: str) -> list[str]:
    """The http(s) URLs of a page's source: where it loads things, and any but names of namespaces."""
    loading = LOADING_ATTRIBUTE.findall(source) + CSS_LOAD.findall(source)
    return loading + WEB_ADDRESS.findall(SVG_METADATA.sub("", NAMESPACE.sub("", source)))


def test_the_page_source_names_no_web_address(report: Path) -> None:
    """No http(s) URL in the page but XML namespace names and the SVG figure's metadata."""
    assert web_addresses(report.read_text(encoding="utf-8")) == []


def test_the_source_check_finds_web_addresses() -> None:
    page = ('<svg xmlns="http://www.w3.org/2000/svg"><metadata><dc:title>https://matplotlib.org/</dc:title>'
            '</metadata></svg><img src="https://example.com/a.png"><style>b { background: url(http://x.org/b) }'
            "</style><p>see http://example.org/c</p>")
    assert web_addresses(page) == ['src="https:', "url(http:", "https://example.com/a.png", "http://x.org/b",
                                   "http://example.org/c"]


def test_the_recorder_sees_and_blocks_an_outside_request(page: Page) -> None:
    """The check above is not vacuous: a request to the web is recorded and fails."""
    outcome = page.evaluate("fetch('http://example.com/probe.png').then(() => 'loaded', () => 'failed')")
    assert outcome == "failed"
    assert "http://example.com/probe.png" in page.blocked_urls()
    assert "http://example.com/probe.png" in page.requested_urls()
