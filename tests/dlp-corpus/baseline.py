"""Writes the regression floors from an evaluation: `baseline.py EVAL.json [BASELINE.json]`.

EVAL.json is `warden redact --eval DIR --json`'s output; the baseline (default
tests/dlp-corpus/baseline.json, read by tests/dlp_corpus.rs) keeps, for the project's own set:

* `recall`: caught and total per category of secret (`credential`, `pii`, `all`) — floors;
* `kinds`: caught and total per kind — floors;
* `false_positives`: changed and total per category of clean text — ceilings.

Run it (`make eval-dlp UPDATE_BASELINE=1`) after an intended improvement, or after new kinds or
clean categories joined the set, and commit the file with the change that earned it.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def dump(baseline: dict) -> str:
    """JSON with one line per kind or category, so that merges touch only the lines that moved."""
    parts = [f' "about": {json.dumps(baseline["about"])}']
    for section in ("recall", "kinds", "false_positives"):
        rows = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in baseline[section].items()]
        parts.append(f' "{section}": {{\n' + ",\n".join(rows) + "\n }")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    if report["streaming"]["differences"]:
        print("baseline.py: streaming differs from one-shot; fix that before writing floors", file=sys.stderr)
        return 1
    baseline = {
        "about": "Floors (recall, kinds) and ceilings (false_positives) for tests/dlp_corpus.rs; written by tests/dlp-corpus/baseline.py.",
        "recall": {c: {"caught": r["caught"], "total": r["total"]} for c, r in sorted(report["categories"].items())},
        "kinds": {k: {"caught": r["caught"], "total": r["total"]} for k, r in sorted(report["kinds"].items())},
        "false_positives": {c: {"changed": r["changed"], "total": r["total"]} for c, r in sorted(report["clean"].items())},
    }
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else HERE / "baseline.json"
    out.write_text(dump(baseline), encoding="utf-8")
    print(f"baseline.py: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
