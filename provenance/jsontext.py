"""JSON text from outside (embedded metadata, sidecars, flags) parsed with a nesting limit.

Python's parser and every walker over the parsed value recurse once per level, so a
document nested thousands deep would end in a RecursionError far from its cause. The depth
is measured first, without recursion, and a document deeper than ``MAX_DEPTH`` is refused
with a message that says so.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Real generation metadata (ComfyUI workflows included) stays within a dozen levels.
MAX_DEPTH = 64
_TOKENS = re.compile(r'[\[\]{}"\\]')


class TooDeep(ValueError):
    """The JSON text nests deeper than MAX_DEPTH."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings do
    not count), found without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    previous_end = -1
    for match in _TOKENS.finditer(text):
        token = match.group()
        if in_string:
            if escaped:
                escaped = False
                # An escape covers the one character after the backslash.
                if match.start() == previous_end:
                    continue
            if token == "\\":
                escaped, previous_end = True, match.end()
            elif token == '"':
                in_string = False
            continue
        if token == '"':
            in_string, escaped = True, False
        elif token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def check_depth(text: str) -> None:
    """TooDeep (a ValueError) when ``text`` nests deeper than MAX_DEPTH."""
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise TooDeep(f"JSON nested {depth} levels deep, over the limit of {MAX_DEPTH}")


def loads(text: str) -> Any:
    """``json.loads`` for text from outside; TooDeep (a ValueError) past MAX_DEPTH."""
    check_depth(text)
    return json.loads(text)
