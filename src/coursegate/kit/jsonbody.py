"""How deep a JSON body may nest, checked on the raw bytes before any parser recurses.

Python's parser recurses once per level: a body nested a few thousand deep
(well within 64 KiB) raised RecursionError, which FastAPI turned into an
unnamed 400, and one nested a few hundred deep parsed and then reached code
that recurses again (validation, storage, rendering). No payload of this API
comes near the limit; every route refuses deeper bodies as `INVALID_JSON`.
"""

from __future__ import annotations

import re
from itertools import accumulate

MAX_JSON_DEPTH = 32

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body`, read as JSON, opens more than `limit` arrays or objects inside each
    other. Brackets inside strings do not count; malformed JSON may be over-counted, which
    only refuses as too deep what the parser would refuse anyway.

    Cheap for ordinary bodies: one that opens no more than `limit` brackets in all cannot
    be deeper, and only the others are scanned (in C, by regex, translate and accumulate).
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit
