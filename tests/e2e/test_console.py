"""The console (`warden serve`'s pages) in headless Chromium: navigation between reviews and
sessions, the sessions filter by a date and time in the browser's own time zone, pagination of the
listing and of a long session, turn cards whose tool calls and system reminders are collapsed until
clicked, text that wraps, and screenshots that show a rendered page.

Records are sent to the real `warden serve` as a gateway sends them (`POST /v1/audit/records` with
the gateway token); the gateway's own path to the store is covered by test_audit_trail.py."""

from __future__ import annotations

import json
import sys
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import auditor_service_changes, png_pixels, REPO, Service, free_port, init_keys

sys.path.insert(0, str(REPO / "scripts"))
from console_fixtures import blob_name, gateway_record  # noqa: E402

BROWSER = REPO / "tests" / "e2e" / "browser"
# 2027-01-15T08:00:00Z.
START_MS = 1_800_000_000_000
MINUTE = 60_000
LONG = "cc-long-session"
REMINDER_HIDDEN = "Do not commit generated files"


def record(seq: int, session: str, start: int, messages: list[str], answer: list[dict], subject: str = "alice") -> dict:
    """A record as the gateway writes it, carrying its messages' blobs."""
    blobs = {blob_name(m): m for m in messages}
    return {**gateway_record("gw-console", seq, session, start, list(blobs), answer, subject), "blobs": blobs}


def long_session() -> list[dict]:
    """60 agent-loop requests a minute apart (08:00Z–08:59Z): a prompt with a system reminder and
    a long unbroken word, then tool calls and results."""
    prompt = json.dumps({"role": "user", "content": [
        {"type": "text", "text": f"<system-reminder>\nContext from CLAUDE.md\n{REMINDER_HIDDEN}\n</system-reminder>"},
        {"type": "text", "text": "Make the test suite pass. Log: " + "x" * 600}]})
    history = [prompt]
    records = []
    for n in range(60):
        call = {"type": "tool_use", "id": f"toolu_{n}", "name": "Bash", "input": {"command": f"make test STEP={n}"}}
        records.append(record(n + 1, LONG, START_MS + n * MINUTE, list(history),
                              [{"type": "text", "text": f"Running step {n}."}, call]))
        history.append(json.dumps({"role": "assistant", "content": [{"type": "text", "text": f"Running step {n}."}, call]}))
        history.append(json.dumps({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": f"step {n}: 12 passed"}]}))
    return records


@pytest.fixture(scope="module")
def console(tmp_path_factory, make_policy):
    tmp = tmp_path_factory.mktemp("console")
    keys = init_keys(tmp / "keys")
    port = free_port()
    policy = make_policy(auditor_service_changes(port))
    service = Service(port, keys, tmp / "warden.db", policy, tmp / "serve.log")
    service.start()
    records = long_session()
    early = json.dumps({"role": "user", "content": "An early question"})
    late = json.dumps({"role": "user", "content": "A late question"})
    records.append(record(100, "s-early", START_MS - 60 * MINUTE, [early], [{"type": "text", "text": "Early."}], "carol"))
    records.append(record(101, "s-late", START_MS + 120 * MINUTE, [late], [{"type": "text", "text": "Late."}], "dave"))
    answer = service.post_records(records)
    assert answer["stored"] == len(records), answer
    yield service
    service.stop()


def assert_rendered_page(path: Path) -> None:
    """The screenshot shows a page: the dark header band on top, a light body, many colours
    (text, tables, cards), not a blank or an error-only page."""
    width, height, channels, rows = png_pixels(path)
    assert width >= 800 and height >= 600, (width, height)
    pixel = lambda y, x: rows[y][x * channels:x * channels + 3]
    assert sum(pixel(20, 600)) < 200, "the console's dark header is at the top"
    assert sum(pixel(height - 5, 5)) > 600, "the page's background is light"
    colours = {pixel(y, x) for y in range(0, height, 7) for x in range(0, width, 7)}
    assert len(colours) > 40, f"only {len(colours)} colours: nothing rendered"


def test_the_console_navigates_filters_by_local_time_pages_and_expands_tool_calls(console, issuer, tmp_path):
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        assert Path(tool).exists(), f"{tool} is missing: run `make build` (scripts/bootstrap.sh installs it)"
    assert (BROWSER / "node_modules" / "selenium-webdriver").is_dir(), "run `make build` (npm ci in tests/e2e/browser)"
    auditor = issuer.mint(sub="bob", groups=["leads"], aud="warden-approvals")
    # India has no daylight saving time: 13:30 there is 08:00Z on any date.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TZ": "Asia/Kolkata"}
    browser = subprocess.run(["node", str(BROWSER / "console.mjs"), console.url, LONG, "2027-01-15T13:30",
                              str(tmp_path)], input=auditor, capture_output=True, text=True, timeout=120,
                             cwd=BROWSER, env=env)
    seen = json.loads(browser.stdout.strip().splitlines()[-1]) if browser.stdout.strip() else {}
    assert seen.get("ok"), browser.stdout + browser.stderr

    assert "Warden console" in seen["title"] and "approvals" not in seen["title"].lower(), seen["title"]
    assert (seen["reviewsCurrent"], seen["sessionsCurrent"], seen["backToReviews"]) == ("Reviews", "Sessions", "Reviews")
    assert seen["sessionsCurrentOnTranscript"] == "Sessions"
    assert seen["zone"] in ("Asia/Kolkata", "Asia/Calcutta"), "the page names the browser's zone (ICU may use the old name)"
    assert seen["allRows"] == ["session-s-late", f"session-{LONG}", "session-s-early"]
    assert not seen["firstLastTime"].endswith("Z"), f"times read in the viewer's zone: {seen['firstLastTime']}"

    # 13:30 in Kolkata is sent as the instant 08:00Z, and shown back as 13:30.
    assert "since=2027-01-15T08%3A00%3A00.000Z" in seen["filteredUrl"], seen["filteredUrl"]
    assert seen["filteredRows"] == ["session-s-late", f"session-{LONG}"]
    assert seen["sinceShown"] == "2027-01-15T13:30"

    assert seen["page1"] == ["session-s-late", f"session-{LONG}"]
    assert seen["page2"] == ["session-s-early"]
    assert seen["page1Again"] == seen["page1"]

    assert seen["range"] == "Requests 1–50 of 60" and seen["cards"] == 50
    assert (seen["toolInputVisibleBefore"], seen["toolInputVisibleAfter"]) == (False, True), "collapsed until clicked"
    assert "make test STEP=0" in seen["toolInput"]
    assert seen["reminderVisibleBefore"] is False
    assert "Make the test suite pass." in seen["promptText"] and REMINDER_HIDDEN not in seen["promptText"]
    assert seen["sideways"] is False, "a 600-character word wraps: no horizontal scroll"
    assert not seen["turnTime"].endswith("Z"), seen["turnTime"]
    assert seen["laterRange"] == "Requests 51–60 of 60"
    assert seen["earlierRange"] == "Requests 1–50 of 60"

    for shot in ("sessions", "session"):
        assert_rendered_page(tmp_path / f"{shot}.png")


def test_the_console_script_is_served_from_this_origin_and_pages_allow_no_other(console):
    with urllib.request.urlopen(f"{console.url}/console.js", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/javascript")
        assert "data-instant" in r.read().decode()
    with urllib.request.urlopen(f"{console.url}/login", timeout=10) as r:
        policy = r.headers["content-security-policy"]
        page = r.read().decode()
    directives = [d.strip() for d in policy.split(";")]
    assert "script-src 'self'" in directives, policy
    assert page.count("<script") == 1 and '<script src="/console.js" defer></script>' in page
