"""Quick check of one family's kinds: `python3 tests/dlp-corpus/kinds/check.py cloud [N]`.

Draws N samples per kind, assigns each to one of its names (or writes it alone), runs
`target/release/warden redact --jsonl` over them and prints, per kind, how many were caught
(no 8 consecutive characters of the private part left). Exit 1 when any sample was missed.
The full evaluation with every wrapping is `make eval-dlp`.
"""

import importlib
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kinds import Secret, Snippet  # noqa: E402


def leaked(private: str, output: str) -> bool:
    return any(private[i : i + 8] in output for i in range(max(len(private) - 7, 1)))


def main() -> int:
    family = importlib.import_module(f"kinds.{sys.argv[1]}")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rng = random.Random(sys.argv[1])
    lines, expected = [], []
    for kind in family.KINDS:
        for i in range(count):
            sample = kind.make(rng)
            if isinstance(sample, Secret):
                name = rng.choice(kind.names) if kind.names else None
                text = f"{name}={sample.value}" if name else f"the value is {sample.value} here"
                offset = text.index(sample.value) + sample.public
                privates = [text[offset : offset + len(sample.private)]]
            else:
                text = sample.text
                privates = [text[a:b] for a, b in sample.spans]
            lines.append(json.dumps({"id": f"{kind.id}/{i}", "text": text}))
            expected.append((kind.id, text, privates))
    out = subprocess.run(
        [str(ROOT / "target/release/warden"), "redact", "--jsonl"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, check=False,
    )
    results = [json.loads(line)["text"] for line in out.stdout.splitlines() if line.strip()]
    if len(results) != len(expected):
        print(out.stderr)
        return 2
    missed = 0
    per_kind: dict = {}
    for (kind, text, privates), redacted in zip(expected, results):
        ok = not any(leaked(p, redacted) for p in privates)
        per_kind.setdefault(kind, [0, 0])[0 if ok else 1] += 1
        if not ok:
            missed += 1
            print(f"MISSED {kind}: {text[:160]!r}")
    for kind, (ok, bad) in per_kind.items():
        print(f"{kind:40} {ok}/{ok + bad}")
    print(f"{len(per_kind)} kinds, {missed} samples missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
