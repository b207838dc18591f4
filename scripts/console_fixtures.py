"""What the console's scripts and browser test share: the demo policy pointed at a run of its own,
and audit records shaped as the gateway writes them (docs/audit.md, "The record").

Used by scripts/screenshots.py, scripts/bench_console.py and tests/e2e/test_console.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def demo_policy(directory: Path, approvals_url: str) -> Path:
    """envoy/policy.yaml, trusting the JWKS in `directory` (`warden token init --dir`) and
    calling the approval service at `approvals_url`, written to `directory`/policy.yaml."""
    policy = (REPO / "envoy" / "policy.yaml").read_text()
    policy = policy.replace("../.demo/jwks.json", str(directory / "jwks.json"))
    policy = policy.replace("http://127.0.0.1:8787", approvals_url)
    path = directory / "policy.yaml"
    path.write_text(policy)
    return path


def blob_name(text: str) -> str:
    """A blob's content-addressed name (`sha256:` + hex of the text)."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def gateway_record(source: str, seq: int, session: str, start_ms: int, message_names: list[str],
                   answer: list[dict], subject: str = "alice", cost_nanos: int | None = None) -> dict:
    """A completed exchange's record, without `blobs` (callers add the contents they introduce)."""
    record = {
        "version": 1, "source": source, "seq": seq, "id": f"{source}-{seq}",
        "request_id": f"req_warden_{seq}", "session_id": session, "job_id": None,
        "identity": {"issuer": "warden-demo", "subject": subject, "groups": ["eng"], "role": "developer"},
        "endpoint": "messages", "method": "POST", "path": "/v1/messages?beta=true",
        "decision": {"allowed": True, "reason": None, "status": 200, "message": None},
        "approval": None, "model": "claude-sonnet-4-6",
        "request": {"params": {"max_tokens": 32000, "stream": True}, "messages": message_names},
        "response": {"status": 200, "stream": True, "content": answer, "stop_reason": "end_turn", "error": None},
        "dlp": {"masked": {}, "blocked": {}, "audited": {}},
        "usage": {"input_tokens": 1000 + seq, "output_tokens": 40, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0},
        "timings": {"start": start_ms, "first_byte": start_ms + 300, "end": start_ms + 4000},
        "outcome": "completed",
    }
    if cost_nanos is not None:
        record["cost_nanos"] = cost_nanos
    return record
