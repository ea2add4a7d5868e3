"""The bounded JSON parser: depth and number size are checked before json.loads runs."""

from __future__ import annotations

import json

import pytest

from kernel.runtime.errors import BadRequest
from kernel.runtime.jsonbounds import MAX_DEPTH, MAX_NUMBER_DIGITS, parse_json


def nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


def refused(raw: bytes | str) -> str:
    with pytest.raises(BadRequest) as caught:
        parse_json(raw)
    assert caught.value.status == 400 and caught.value.code == "invalid_json"
    return caught.value.message


def test_depth_exactly_at_the_limit_parses() -> None:
    value = parse_json(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 50_000, 1_000_000])
def test_depth_above_the_limit_is_refused(depth: int) -> None:
    assert f"nested deeper than {MAX_DEPTH}" in refused(nested(depth))


def test_objects_and_arrays_both_count() -> None:
    body = ('{"a":' * (MAX_DEPTH // 2) + "[" * (MAX_DEPTH // 2 + 1)).encode()
    body += b"]" * (MAX_DEPTH // 2 + 1) + b"}" * (MAX_DEPTH // 2)
    assert "nested" in refused(body)
    assert parse_json(b'{"a": [{"b": [1, 2]}]}') == {"a": [{"b": [1, 2]}]}


def test_siblings_do_not_add_up() -> None:
    flat = b"[" + b",".join([b"[[]]"] * 10_000) + b"]"
    assert len(parse_json(flat)) == 10_000


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5_000,  # brackets inside a string are text
        '\\"' + "[" * 5_000,  # an escaped quote does not end the string
        "\\\\" + "{" * 5_000,  # an escaped backslash before the closing quote
        "9" * 5_000,  # digits inside a string are text
    ],
)
def test_strings_holding_brackets_or_digits_do_not_count(text: str) -> None:
    raw = ('{"title": "' + text + '", "n": [1]}').encode()
    assert parse_json(raw) == json.loads(raw)


def test_brackets_after_a_string_with_escapes_still_count() -> None:
    body = b'["a\\\\", ' + nested(MAX_DEPTH) + b"]"
    assert "nested" in refused(body)


def test_unterminated_strings_are_syntax_errors_not_slow() -> None:
    # Every quote opens a string that never closes; a naive scanner retries from each one.
    message = refused(b'["' + b'\\"' * 200_000)
    assert "not valid JSON" in message


def test_number_digits_at_the_limit_parse_and_above_are_refused() -> None:
    assert parse_json(b"[" + b"7" * MAX_NUMBER_DIGITS + b"]") == [int("7" * MAX_NUMBER_DIGITS)]
    assert f"more than {MAX_NUMBER_DIGITS} digits" in refused(b"[" + b"7" * 5_000 + b"]")
    assert "digits" in refused(b'{"x": 0.' + b"1" * 5_000 + b"}")
    assert "digits" in refused(b'{"x": -' + b"1" * (MAX_NUMBER_DIGITS + 1) + b"}")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
def test_non_finite_numbers_are_refused(literal: bytes) -> None:
    assert "finite" in refused(b'{"x": ' + literal + b"}")


def test_ordinary_floats_and_unicode_survive() -> None:
    raw = '{"w": 0.25, "e": 1e-5, "t": "glacier ❄ \\u00e9 \\ud83d\\ude00"}'.encode()
    assert parse_json(raw) == {"w": 0.25, "e": 1e-5, "t": "glacier ❄ é 😀"}


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud83dx", "\\ude00\\ud83d"])
def test_lone_surrogates_are_refused(escape: str) -> None:
    # They cannot be encoded as UTF-8, so any later write of the string would fail.
    assert "surrogate" in refused(f'{{"t": "a{escape}b"}}'.encode())


def test_an_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    assert parse_json(b'{"t": "\\\\ud800"}') == {"t": "\\ud800"}


def test_syntax_and_encoding_errors_share_the_code() -> None:
    assert "not valid JSON" in refused(b"{not json")
    assert "UTF-8" in refused(b"\xff\xfe")
    assert "not valid JSON" in refused(b"")
    assert parse_json('{"a": 1}') == {"a": 1}  # str is accepted as well as bytes
