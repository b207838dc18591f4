"""structured kinds: see __init__.py"""

from . import Kind

KINDS: list[Kind] = []
