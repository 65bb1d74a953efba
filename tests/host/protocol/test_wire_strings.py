"""Strings on the wire: json.dumps(ensure_ascii=True)'s escapes, which the C++ writer (json.cpp) also produces."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.protocol.wire import canonical_json, decode_line, encode_line


@pytest.mark.parametrize("text, wire", [
    ("plain ~ text", '"plain ~ text"'),
    ('"\\\n\r\t\b\f', '"\\"\\\\\\n\\r\\t\\b\\f"'),
    ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
    ("\x7f", '"\\u007f"'),  # DEL is ASCII but not printable: escaped
    ("é€", '"\\u00e9\\u20ac"'),  # lowercase hex
    ("\U0001f600", '"\\ud83d\\ude00"'),  # a surrogate pair above U+FFFF
    ("/", '"/"'),  # the solidus is not escaped
])
def test_string_spelling(text: str, wire: str) -> None:
    assert canonical_json(text) == wire
    assert canonical_json({text: text}) == "{" + wire + ":" + wire + "}"


@given(st.text(max_size=500))  # 12 bytes per escaped character stays under the line limit
def test_any_string_is_printable_ascii_and_round_trips(text: str) -> None:
    body = canonical_json(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in body)
    assert json.loads(body) == text
    assert decode_line(encode_line({"t": "log", "text": text}))["text"] == text
