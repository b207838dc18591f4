"""Kinds of secrets and personal data in the DLP evaluation corpus.

Each family module (`cloud`, `devtools`, `ai`, `business`, `structured`, `generic`, `personal`)
defines `KINDS: list[Kind]`: how to fabricate values of one documented format. The generator
(`../generate.py`) draws samples from every kind and wraps them the way Claude sees them (prose,
fenced code, diffs, logs, JSON tool input, `.env` files, YAML); the evaluation scores a sample
as caught only when no 8 consecutive characters of its private part remain.

Every value is fabricated from a seeded generator: none is, or was copied from, a real
credential or a real person's data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Union

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER_ALNUM = UPPER + "0123456789"
LOWER_ALNUM = LOWER + "0123456789"
LETTERS = UPPER + LOWER
DIGITS = "0123456789"
HEX = "0123456789abcdef"
HEX_UPPER = "0123456789ABCDEF"
URL_SAFE = ALNUM + "_-"
B64 = ALNUM + "+/"
BASE32 = UPPER + "234567"


@dataclass(frozen=True)
class Secret:
    """A value; its first `public` characters (a vendor prefix such as `ghp_`) are not private."""

    value: str
    public: int = 0

    @property
    def private(self) -> str:
        return self.value[self.public :]


@dataclass(frozen=True)
class Snippet:
    """A text that carries its secrets itself (a kubeconfig, a connection string, a `.netrc`):
    `spans` are the exact `[start, end)` character offsets of the private parts in `text`."""

    text: str
    spans: tuple[tuple[int, int], ...]


Sample = Union[Secret, Snippet]


@dataclass(frozen=True)
class Kind:
    """One documented format."""

    id: str
    """kebab-case; the id of the detector expected to catch it, where one is meant to."""
    category: str
    """`credential` or `pii`."""
    make: Callable[[random.Random], Sample]
    """Fabricates one value (deterministic for a seeded `rng`)."""
    names: tuple[str, ...] = ()
    """Names a person would assign the value to (`DD_API_KEY`, `datadog_api_key`). Formats without a
    distinctive prefix are only recognisable next to such a name, so wrappers then always use one;
    for self-describing tokens they are optional decoration."""
    source: str = ""
    """Where the format is documented, in a few words (`GitHub docs: token formats`)."""


def rand(rng: random.Random, alphabet: str, n: int) -> str:
    """`n` characters of `alphabet`."""
    return "".join(rng.choice(alphabet) for _ in range(n))


def token(prefix: str, body: str) -> Secret:
    """A vendor token: `prefix` is public (it stays visible in the mask), `body` private."""
    return Secret(prefix + body, public=len(prefix))


def snippet(template: str, **parts: str) -> Snippet:
    """`template` with `{name}` fields replaced by `parts`; every part is private."""
    text, spans, pos = "", [], 0
    import string

    for literal, field, _, _ in string.Formatter().parse(template):
        text += literal
        if field is not None:
            value = parts[field]
            spans.append((len(text), len(text) + len(value)))
            text += value
    return Snippet(text, tuple(spans))
