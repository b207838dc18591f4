#!/usr/bin/env python3
"""Rewrites the "Built-in detectors" table of docs/dlp.md from the catalog.

Runs `warden redact --list` (through `cargo run`) and replaces the rows of the
table that follows the heading; tests/docs_detectors.rs checks the two agree.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "dlp.md"
HEADING = "## Built-in detectors"


def catalog_rows() -> list:
    listing = subprocess.run(
        ["cargo", "run", "--quiet", "--bin", "warden", "--", "redact", "--list"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    rows = []
    for line in listing.splitlines():
        detector_id, category, description = line.split("\t", 2)
        rows.append(f"| `{detector_id}` | {category} | {description.replace('|', chr(92) + '|')} |")
    return rows


def main() -> int:
    lines = DOCS.read_text().split("\n")
    start = lines.index(HEADING)
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("| `"))
    end = first
    while end < len(lines) and lines[end].startswith("| `"):
        end += 1
    rows = catalog_rows()
    lines[first:end] = rows
    DOCS.write_text("\n".join(lines))
    print(f"docs/dlp.md: {end - first} rows replaced by {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
