"""scripts/bench.py, the load benchmark's harness: its pure parts (the 20-turn session's bodies,
the ratio maths, the markdown tables) without Envoy, the session's wrk script against a local
recorder, and a --smoke run of the whole harness (real Envoy, wrk, `warden serve`) so it cannot
rot. Timing is never asserted: only that every piece runs and reports what it should."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import PYTHON, REPO, SCRIPTS, WASM

sys.path.insert(0, str(SCRIPTS))
import bench  # noqa: E402  (scripts/bench.py)

FIXTURE = json.loads(bench.FIXTURE.read_text())
SID_A = bench.session_id("0a0a0a0a", 1)
SID_B = bench.session_id("0a0a0a0a", 2)


def wrk_binary() -> str:
    wrk = shutil.which("wrk")
    assert wrk, "wrk is missing: `make build` installs it (scripts/bootstrap.sh)"
    return wrk


# --------------------------------------------------------------------------------------------
# the session's bodies


@pytest.fixture(scope="module")
def parts() -> bench.SessionParts:
    return bench.session_parts(FIXTURE, 20)


def test_each_turn_adds_an_assistant_tool_use_and_its_tool_result(parts):
    for turn in range(1, 21):
        body = json.loads(parts.body(SID_A, turn))
        messages = body["messages"]
        assert len(messages) == 2 * turn - 1
        assert [m["role"] for m in messages] == ["user", "assistant"] * (turn - 1) + ["user"]
        for assistant, user in zip(messages[1::2], messages[2::2]):
            uses = [b["id"] for b in assistant["content"] if b["type"] == "tool_use"]
            results = [b["tool_use_id"] for b in user["content"] if b["type"] == "tool_result"]
            assert uses and uses == results


def test_a_turn_resends_the_previous_turn_unchanged_and_keeps_system_and_tools(parts):
    for turn in range(2, 21):
        before = json.loads(parts.body(SID_A, turn - 1))
        after = json.loads(parts.body(SID_A, turn))
        assert after["messages"][: len(before["messages"])] == before["messages"]
        assert after["system"] == FIXTURE["system"] and after["tools"] == FIXTURE["tools"]
        assert after["model"] == FIXTURE["model"] and after["stream"] is True


def test_the_history_grows_by_a_few_kilobytes_a_turn(parts):
    sizes = [len(parts.body(SID_A, t)) for t in range(1, 21)]
    growth = [b - a for a, b in zip(sizes, sizes[1:])]
    assert all(3_000 < g < 6_000 for g in growth), growth
    assert sizes[0] < 40_000 < 100_000 < sizes[-1]


def test_the_session_id_is_where_claude_code_puts_it(parts):
    body = json.loads(parts.body(SID_A, 3))
    assert json.loads(body["metadata"]["user_id"])["session_id"] == SID_A
    assert bench.SESSION_TAG not in parts.body(SID_A, 20).decode()


def test_two_sessions_share_no_message(parts):
    a = json.loads(parts.body(SID_A, 20))["messages"]
    b = json.loads(parts.body(SID_B, 20))["messages"]
    def keys(messages: list) -> set[str]:
        return {json.dumps(m, sort_keys=True) for m in messages}

    assert not keys(a) & keys(b)


def test_turns_outside_the_session_are_refused(parts):
    for turn in (0, 21):
        with pytest.raises(ValueError):
            parts.body(SID_A, turn)


def test_turn_buckets_cover_every_turn_once():
    assert bench.turn_buckets(20, 5) == [(1, 5), (6, 10), (11, 15), (16, 20)]
    assert bench.turn_buckets(7, 5) == [(1, 5), (6, 7)]
    assert bench.turn_buckets(3, 10) == [(1, 3)]


class Recorder(BaseHTTPRequestHandler):
    """Answers every POST 200 and keeps (session header, body)."""

    seen: list[tuple[str, bytes]] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["content-length"]))
        Recorder.seen.append((self.headers.get("x-claude-code-session-id", ""), body))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_the_wrk_script_sends_the_bodies_the_python_side_builds(tmp_path, parts):
    """Turns 3..4 of 3 sessions, after turns 1..2 (sent by an earlier phase): wrk's Lua builds
    every body byte for byte as SessionParts.body does, turn by turn across the sessions, and
    stops after exactly that many answers."""
    wrk = wrk_binary()
    folder = parts.write(tmp_path / "session")
    script = bench.write_session_script(tmp_path / "session.lua", folder,
                                        {"authorization": "Bearer x"}, 3, 4, 3, "0b0b0b0b")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = subprocess.run([wrk, "-t1", "-c1", "-d20s", "-s", str(script),
                              f"http://127.0.0.1:{server.server_address[1]}{bench.PATH}"],
                             capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.split("BENCH_JSON ", 1)[1].splitlines()[0])
    assert report["ok"] == 6 and report["capped"] == 1
    assert (tmp_path / "session.lua.done").exists()
    sids = [bench.session_id("0b0b0b0b", s) for s in (1, 2, 3)]
    expected = [(sid, parts.body(sid, turn)) for turn in (3, 4) for sid in sids]
    assert Recorder.seen[:6] == expected


# --------------------------------------------------------------------------------------------
# ratios and tables


BASE = {"cpu_us": 200.0, "p50_ms": 0.4, "p99_ms": 0.9, "rps": 2000.0, "other_load": 0.05}
WARDEN = {"cpu_us": 500.0, "p50_ms": 0.7, "p99_ms": 1.3, "rps": 1000.0, "other_load": 0.1}


def test_compare_gives_ratios_and_differences():
    r = bench.compare(BASE, WARDEN)
    assert r["cpu_ratio"] == pytest.approx(2.5)
    assert r["cpu_added_us"] == pytest.approx(300.0)
    assert r["p50_added_ms"] == pytest.approx(0.3)
    assert r["p99_added_ms"] == pytest.approx(0.4)
    assert r["rps_ratio"] == pytest.approx(0.5)


def test_a_ratio_to_zero_is_nan_not_a_crash():
    r = bench.compare(dict(BASE, cpu_us=0.0), WARDEN)
    assert math.isnan(r["cpu_ratio"])


def test_the_matrix_table_marks_each_target():
    cells = [{"workers": 1, "answer": "sse", "connections": 16, "base": BASE, "warden": WARDEN,
              "ratios": bench.compare(BASE, WARDEN)},
             {"workers": 2, "answer": "json", "connections": 1, "base": BASE,
              "warden": dict(WARDEN, cpu_us=300.0, p99_ms=2.0, refused=3),
              "ratios": bench.compare(BASE, dict(WARDEN, cpu_us=300.0, p99_ms=2.0))}]
    lines = bench.matrix_markdown(cells).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| Envoy workers |")
    assert lines[2].startswith("| 1 | sse | 16 | 200.0 | 500.0 | **2.50×** **missed** |")
    assert "**+0.400 ms** met" in lines[2] and lines[2].endswith("| 0.50× | 0 | 0.10 |")
    assert lines[3].endswith("| 3 | 0.10 |")  # Warden's refusals are counted, not hidden
    assert "**1.50×** met" in lines[3] and "**+1.100 ms** **missed**" in lines[3]


def test_the_session_table_reports_how_the_added_cpu_moved():
    rows = [{"first": 1, "last": 5, "body_kb": (30.6, 46.6), "base": BASE, "warden": WARDEN},
            {"first": 16, "last": 20, "body_kb": (88.0, 106.4), "base": dict(BASE, cpu_us=250.0),
             "warden": dict(WARDEN, cpu_us=850.0)}]
    text = bench.session_markdown(rows)
    assert "| 1–5 | 31–47 | 200.0 | 500.0 | 2.50× | +300.0 |" in text
    assert "| 16–20 | 88–106 | 250.0 | 850.0 | 3.40× | +600.0 |" in text
    assert "turns 16–20 ÷ turns 1–5: **2.00×**" in text
    assert bench.session_growth(rows) == {"added": pytest.approx(2.0), "base": pytest.approx(1.25)}


# --------------------------------------------------------------------------------------------
# the whole harness, briefly


def test_the_smoke_run_measures_the_matrix_and_the_session(tmp_path):
    """One cell of the matrix (2 workers, JSON answers, 16 connections) and a 6-turn session in
    two phases, 1 s each, two rounds (the second runs the same scripts again, in the other
    order): every request is answered through both gateways, the audit trails verify, and both
    tables come out."""
    wrk_binary()
    assert WASM.is_file(), f"{WASM} is missing: make build"
    results = tmp_path / "bench.json"
    out = subprocess.run([PYTHON, str(SCRIPTS / "bench.py"), "--smoke", "--workers", "2",
                          "--answers", "json", "--connections", "16", "--turns", "6",
                          "--rounds", "2", "--turns-per-phase", "3", "--json", str(results)],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "| 2 | json | 16 |" in out.stdout
    assert "| 1–3 |" in out.stdout and "| 4–6 |" in out.stdout
    assert out.stdout.count("(exit 0)") == 2  # the matrix cell's trail and the session's
    data = json.loads(results.read_text())
    cells = [(c["workers"], c["answer"], c["connections"]) for c in data["matrix"]]
    assert cells == [(2, "json", 16)]
    assert [(r["first"], r["last"]) for r in data["session"]] == [(1, 3), (4, 6)]
    session_requests = sum(p["requests"] for r in data["session"]
                           for ph in r["phases"].values() for p in ph)
    assert session_requests == 2 * 2 * 4 * 6  # 2 rounds x 2 gateways x 4 sessions x 6 turns
