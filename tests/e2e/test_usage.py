"""Spend in the console, in a real browser: the real `warden serve` ingests records with usage and
cost (as the gateway sends them), an auditor opens the usage page in headless Chromium, the chart
has a plotted line for each role and the screenshot shows them drawn, the top spenders are those
`warden usage --json` reports for the same window, hostile labels stay text, the budgets two
gateways leased in the window are listed, and the page learns the browser's time zone by itself."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import auditor_service_changes, png_pixels, REPO, WARDEN, Service, free_port, init_keys

BROWSER = REPO / "tests" / "e2e" / "browser"
DAY_MS = 86_400_000
# 2026-11-02T00:00:00Z: the window the page and the CLI are asked about is 11-02 to 11-04.
NOV_2 = 1_793_577_600_000
EVIL_SUBJECT = '<script>alert("subject")</script>'
EVIL_ROLE = '"><svg onload=alert(1)>'


def record(seq: int, time_ms: int, subject: str, role: str, input_tokens: int, output_tokens: int,
           cost_nanos: int | None) -> dict:
    return {"version": 1, "source": "gw-usage", "seq": seq, "id": f"gw-usage-{seq}",
            "session_id": f"s-{seq}", "job_id": None,
            "identity": {"subject": subject, "role": role, "issuer": "test", "groups": [], "job": {}},
            "model": "claude-sonnet-4-6", "endpoint": "messages", "method": "POST", "path": "/v1/messages",
            "decision": {"allowed": True}, "outcome": "completed",
            "timings": {"start": time_ms, "end": time_ms + 10},
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            "cost_nanos": cost_nanos}


def traffic() -> list[dict]:
    """Three days of three roles; one record before the window and one unpriced."""
    out = []
    seq = 0
    people = [("alice", "developer", 3_000_000), ("bob", "developer", 1_000_000),
              ("carol", "analyst", 500_000), ("ci-bot", "ci", 2_000_000)]
    for day in range(3):
        for hour, (subject, role, cost) in enumerate(people):
            seq += 1
            out.append(record(seq, NOV_2 + day * DAY_MS + (hour + 9) * 3_600_000, subject, role,
                              1000 * (day + 1), 100, cost * (day + 1)))
    out.append(record(seq + 1, NOV_2 - 1, "alice", "developer", 1, 1, 999_000_000_000))
    out.append(record(seq + 2, NOV_2 + 5_000_000, "dave", "analyst", 50, 5, None))
    out.append(record(seq + 3, NOV_2 + 6_000_000, EVIL_SUBJECT, EVIL_ROLE, 1, 1, 1))
    return out


def lease_ask(budget: str, window_start_ms: int, committed_tokens: int) -> dict:
    """A gateway's ask for a day's window of a 1000-token budget (first slice 100)."""
    start = window_start_ms // 1000
    return {"key": f"warden.budget.{budget}.role.0123456789abcdef", "budget": budget,
            "window_start": start, "window_end": start + DAY_MS // 1000,
            "limits": {"tokens": 1000}, "slice": {"tokens": 100, "nanos": 0, "requests": 0},
            "committed": {"tokens": committed_tokens, "nanos": 0, "requests": 0}}


@pytest.fixture(scope="module")
def service(tmp_path_factory, make_policy):
    tmp = tmp_path_factory.mktemp("usage")
    keys = init_keys(tmp / "keys")
    port = free_port()
    policy = make_policy(auditor_service_changes(port))
    svc = Service(port, keys, tmp / "warden.db", policy, tmp / "serve.log")
    svc.start()
    svc.post_records(traffic())
    token = (keys / "approvals-token").read_text().strip()
    for instance in ("gw-a", "gw-b"):
        asks = [lease_ask("team-daily", NOV_2 + DAY_MS, 60), lease_ask(EVIL_SUBJECT, NOV_2, 0),
                lease_ask("october", NOV_2 - 30 * DAY_MS, 0)]
        status, answer = svc.api("POST", "/v1/budget/leases", token, {"instance": instance, "asks": asks})
        assert status == 200, answer
    yield svc
    svc.stop()


def colour_counts(path: Path, box: dict, ratio: float, colours: dict[str, str]) -> dict[str, int]:
    """Pixels inside `box` (CSS pixels) close to each named `#rrggbb` colour."""
    width, height, bpp, rows = png_pixels(path)
    targets = {name: tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for name, c in colours.items()}
    counts = dict.fromkeys(colours, 0)
    x0, y0 = max(0, int(box["x"] * ratio)), max(0, int(box["y"] * ratio))
    x1 = min(width, int((box["x"] + box["width"]) * ratio))
    y1 = min(height, int((box["y"] + box["height"]) * ratio))
    for y in range(y0, y1):
        row = rows[y]
        for x in range(x0, x1):
            pixel = tuple(row[x * bpp:x * bpp + 3])
            for name, target in targets.items():
                if sum(abs(a - b) for a, b in zip(pixel, target)) <= 60:
                    counts[name] += 1
    return counts


def test_the_usage_page_charts_each_role_and_lists_the_clis_top_spenders(service, issuer, tmp_path):
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        assert Path(tool).exists(), f"{tool} is missing: run `make build` (scripts/bootstrap.sh installs it)"
    auditor = issuer.mint(sub="erin", groups=["leads"], aud="warden-approvals")
    screenshot = tmp_path / "usage-page.png"
    env = {**os.environ, "TZ": "Asia/Kolkata"}
    browser = subprocess.run(["node", str(BROWSER / "usage.mjs"), service.url, "2026-11-02", "2026-11-04",
                              str(screenshot)],
                             input=auditor, capture_output=True, text=True, timeout=90, cwd=BROWSER, env=env)
    outcome = json.loads(browser.stdout.strip().splitlines()[-1]) if browser.stdout.strip() else {}
    assert outcome.get("ok"), browser.stdout + browser.stderr

    # A plotted line per role, a point per day of the window, and the lines not flat.
    series = {s["role"]: s for s in outcome["series"]}
    assert set(series) == {"developer", "ci", "analyst", EVIL_ROLE}, series.keys()
    for role in ("developer", "ci", "analyst"):
        assert series[role]["points"] == 3 and series[role]["circles"] == 3, series[role]
        assert len(set(series[role]["heights"])) > 1, f"{role}'s line is flat: {series[role]}"

    # The screenshot shows them: each role's colour is drawn inside the chart.
    colours = {role: series[role]["colour"] for role in ("developer", "ci", "analyst")}
    counts = colour_counts(screenshot, outcome["chart"], outcome["ratio"], colours)
    for role, count in counts.items():
        assert count >= 150, f"{role}'s line ({colours[role]}) is barely visible: {counts}"

    # The top spenders are what the CLI reports for the same window.
    cli = subprocess.run([str(WARDEN), "usage", "--db", str(service.db), "--since", "2026-11-02",
                          "--until", "2026-11-04", "--by", "subject", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    expected = [(r["subject"], r["requests"], r["cost_nanos"]) for r in json.loads(cli.stdout)["rows"]][:20]
    shown = [(s["subject"], s["requests"], s["cost_nanos"]) for s in outcome["spenders"]]
    assert shown == expected
    assert shown[0] == ("alice", 3, 18_000_000), "the record before the window is not counted"

    # Hostile labels are text: shown as typed, nothing created from them.
    assert outcome["injected"] == 0
    assert EVIL_SUBJECT in [s["text"] for s in outcome["spenders"]]

    # The budgets the two gateways leased in the window are listed, ending last first (the
    # October window is not): on team-daily each gateway has its first slice and one more (it
    # had committed 60 of 100), on the other its first slice only; both renewed just now. The
    # hostile budget name is text.
    assert [(b["budget"], b["granted_tokens"], b["instances"], b["live"]) for b in outcome["budgets"]] == [
        ("team-daily", 400, 2, 2), (EVIL_SUBJECT, 200, 2, 2)], outcome["budgets"]
    assert outcome["budgets"][1]["text"].startswith(EVIL_SUBJECT)
    assert "2026-11-03 00:00:00Z → 2026-11-04 00:00:00Z" in outcome["budgets"][0]["text"]

    # Opened bare, the page asked the browser for its zone (TZ=Asia/Kolkata, UTC+05:30).
    assert "tz=330" in outcome["zoneUrl"], outcome["zoneUrl"]
    assert "UTC+05:30" in outcome["zoneText"], outcome["zoneText"]
