"""The JSON depth check agrees with the parser on any JSON value, strings and escapes included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coursegate.kit.jsonbody import MAX_JSON_DEPTH, too_deep


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


# Strings made of the characters that could fool a scanner: brackets, quotes, backslashes.
tricky = st.text(alphabet='[]{}"\\ab', max_size=8)
values = st.recursive(
    st.none() | st.integers() | tricky,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(values, st.integers(min_value=0, max_value=6))
def test_agrees_with_the_depth_of_the_parsed_value(value: Any, limit: int) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    assert too_deep(body, limit) == (depth(value) > limit)


def test_the_limit_is_exact_and_the_attack_is_refused() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not too_deep(at_limit.encode())
    assert too_deep(("[" + at_limit + "]").encode())
    assert too_deep(b"[" * 500_000)  # unclosed, as an attacker needs not close them
    # Many brackets side by side are wide, not deep.
    assert not too_deep(b"[" + b"[]," * 100_000 + b"[]]")
