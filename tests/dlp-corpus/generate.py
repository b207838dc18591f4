"""Generates the DLP evaluation set: `secrets.jsonl` and `clean.jsonl` (docs/dlp.md, "Evaluation").

    python3 tests/dlp-corpus/generate.py [--out DIR] [--families cloud,ai] [--extra FILE.py]

Secrets: every `Kind` of every family module (`kinds/<family>.py`, plus `--extra` files) gets
`max(MIN_PER_KIND, ceil(TARGET_SECRETS / kinds))` samples, each wrapped the way Claude sees text
(prose, fenced code in several languages, unified diffs, log lines, JSON tool input, `.env`, YAML,
TOML/INI, shell `export`, HTTP headers, CLI flags, Docker/Kubernetes env blocks) between noise
lines. A format without a visible prefix that has `names` is always written next to one of them;
self-describing tokens get a name half of the time. Snippets (files that carry their own secrets)
are embedded whole: plain, fenced, diffed, JSON-escaped, introduced by prose.

The private parts are tracked through wrapping and escaping by marking them with two private-use
characters (U+E000 … U+E001) that no wrapper escapes; the markers are removed at the end and their
UTF-8 byte offsets become `secrets: [{"start", "end"}]`.

Clean texts: CLEAN_PER_CATEGORY texts in each category of `clean.CATEGORIES` (code that reads
secrets from the environment, documented placeholders, lock files, hashes, ...).

Deterministic: every sample draws from its own generator seeded by its id (`<kind>/<n>`,
`<category>/<n>`), so two runs write the same bytes, and adding kinds in one family changes no
sample of another (only the per-kind count while there are fewer than TARGET_SECRETS / MIN_PER_KIND
kinds). Standard library only; no network.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree

from kinds import Kind, Secret, Snippet  # noqa: E402
from wrappers import OPEN, CLOSE, SECRET_WRAPPERS, SNIPPET_WRAPPERS, derived_name  # noqa: E402
import clean  # noqa: E402

FAMILIES = ("cloud", "devtools", "ai", "business", "structured", "generic", "personal")
TARGET_SECRETS = 2000
MIN_PER_KIND = 10
CLEAN_PER_CATEGORY = 80


class CorpusError(Exception):
    """A kind or wrapper produced a sample the set cannot hold."""


def load_kinds(families: list[str], extra: list[Path]) -> list[Kind]:
    """Every family's KINDS, then every extra file's; ids must be unique."""
    kinds: list[Kind] = []
    for family in families:
        kinds.extend(importlib.import_module(f"kinds.{family}").KINDS)
    for path in extra:
        spec = importlib.util.spec_from_file_location(f"extra_kinds_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise CorpusError(f"{path}: cannot load")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        kinds.extend(module.KINDS)
    seen: set[str] = set()
    for kind in kinds:
        if kind.id in seen:
            raise CorpusError(f"kind {kind.id!r} is defined twice")
        if kind.category not in ("credential", "pii"):
            raise CorpusError(f"kind {kind.id!r}: category must be credential or pii, not {kind.category!r}")
        seen.add(kind.id)
    return kinds


def unmark(marked: str) -> tuple[str, list[dict]]:
    """Removes the markers; returns the text and the UTF-8 byte spans they enclosed."""
    text, spans, start, size = [], [], None, 0
    for char in marked:
        if char == OPEN:
            if start is not None:
                raise CorpusError("nested secret markers")
            start = size
        elif char == CLOSE:
            if start is None or start == size:
                raise CorpusError("an empty or unopened secret marker")
            spans.append({"start": start, "end": size})
            start = None
        else:
            text.append(char)
            size += len(char.encode("utf-8"))
    if start is not None:
        raise CorpusError("an unclosed secret marker")
    return "".join(text), spans


def marked_sample(sample: Secret | Snippet) -> str:
    """The sample's text with its private parts between markers."""
    if isinstance(sample, Secret):
        if not sample.private:
            raise CorpusError("a secret without a private part")
        return sample.value[: sample.public] + OPEN + sample.private + CLOSE
    out, at = [], 0
    for start, end in sorted(sample.spans):
        out += [sample.text[at:start], OPEN, sample.text[start:end], CLOSE]
        at = end
    out.append(sample.text[at:])
    return "".join(out)


def private_parts(sample: Secret | Snippet) -> list[str]:
    """The private parts, in text order."""
    if isinstance(sample, Secret):
        return [sample.private]
    return [sample.text[start:end] for start, end in sorted(sample.spans)]


def check_span(private: str, found: str) -> bool:
    """Whether `found` (a span of the final text) is `private` as a wrapper wrote it: itself,
    JSON-escaped once or twice (a JSON document inside a JSON string), or with diff `+` line
    prefixes."""
    candidates = [found, found.replace("\n+", "\n")]
    for candidate in list(candidates):
        for _ in range(2):
            try:
                candidate = json.loads(f'"{candidate}"')
            except json.JSONDecodeError:
                break
            candidates.append(candidate)
    return private in candidates


def secret_record(kind: Kind, number: int) -> dict:
    """The `number`th sample of `kind`, wrapped."""
    rng = random.Random(f"secret/{kind.id}/{number}")
    sample = kind.make(rng)
    value = marked_sample(sample)
    one_line = "\n" not in value
    if isinstance(sample, Snippet) and not one_line:
        wrappers = SNIPPET_WRAPPERS
        name = None
    else:
        wrappers = SECRET_WRAPPERS
        needs_name = bool(kind.names) and isinstance(sample, Secret) and sample.public == 0
        if needs_name or rng.random() < 0.5:
            name = rng.choice(kind.names) if kind.names else derived_name(kind.id)
        else:
            name = None
    # Spread every kind over the wrappers: consecutive samples take consecutive wrappers from a
    # per-kind starting point.
    start = random.Random(f"wrappers/{kind.id}").randrange(len(wrappers))
    wrapper_name, wrap = wrappers[(start + number) % len(wrappers)]
    text, spans = unmark(wrap(rng, name, value, kind))
    data = text.encode("utf-8")
    found = [data[s["start"] : s["end"]].decode("utf-8") for s in spans]
    expected = private_parts(sample)
    if len(found) != len(expected) or not all(check_span(p, f) for p, f in zip(expected, found)):
        raise CorpusError(f"{kind.id}/{number}: the {wrapper_name} wrapper does not keep the private parts intact")
    return {
        "id": f"{kind.id}/{number}",
        "kind": kind.id,
        "category": kind.category,
        "wrapper": wrapper_name,
        "text": text,
        "secrets": spans,
    }


def per_kind(kinds: list[Kind]) -> int:
    """Samples per kind: at least MIN_PER_KIND, more while the set is under TARGET_SECRETS."""
    return max(MIN_PER_KIND, math.ceil(TARGET_SECRETS / max(len(kinds), 1)))


def write_jsonl(path: Path, records) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE.parents[1] / "target" / "dlp-corpus", help="output directory (default target/dlp-corpus)")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated families of kinds/ (default all; empty for none)")
    parser.add_argument("--extra", type=Path, action="append", default=[], help="a Python file defining more KINDS (repeatable)")
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    try:
        kinds = load_kinds(families, args.extra)
        if not kinds:
            raise CorpusError("no kinds to draw secrets from")
        count = per_kind(kinds)
        args.out.mkdir(parents=True, exist_ok=True)
        secrets = write_jsonl(args.out / "secrets.jsonl", (secret_record(k, n) for k in kinds for n in range(count)))
        cleans = write_jsonl(args.out / "clean.jsonl", clean.records(CLEAN_PER_CATEGORY))
    except CorpusError as error:
        print(f"generate.py: {error}", file=sys.stderr)
        return 1
    print(f"generate.py: {secrets} secrets over {len(kinds)} kinds, {cleans} clean texts in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
