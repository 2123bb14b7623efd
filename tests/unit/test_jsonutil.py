"""The one "JSON object or refuse" reader: each way a document can fail gives one line in the caller's words."""

from __future__ import annotations

import pytest

from trivy_mirror.jsonutil import load_object, object_or_none


class Refused(Exception):
    pass


@pytest.mark.parametrize(("data", "message"), [
    (b"{", "thing is not valid JSON: Expecting property name"),
    (b"\xff", "thing is not valid JSON: 'utf-8' codec"),
    (b"[]", "thing is not a JSON object"),
    (b"[" * 100_000, "thing JSON is nested too deeply"),
])
def test_refusals_name_the_document(data: bytes, message: str) -> None:
    with pytest.raises(Refused) as caught:
        load_object(data, "thing", Refused)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_caller_wording_and_success() -> None:
    with pytest.raises(Refused, match=r"^bad thing \(Expecting"):
        load_object("nope", "thing", Refused, not_json="bad {what} ({detail})")
    with pytest.raises(Refused, match=r"^no object$"):
        load_object("1", "thing", Refused, not_object="no object")
    assert load_object('{"a": 1}', "thing", Refused) == {"a": 1}


def test_object_or_none() -> None:
    assert object_or_none(b'{"a": []}') == {"a": []}
    assert object_or_none(b"[1]") is None
    assert object_or_none(b"not json") is None
