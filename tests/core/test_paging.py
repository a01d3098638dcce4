"""Page sizes and page tokens, shared by every List RPC of the three services."""

from __future__ import annotations

import pytest

from baton_core import InvalidArgument, decode_page_token, encode_page_token, page_size


def test_a_page_token_round_trips_within_its_listing_only():
    token = encode_page_token({"after": "casefile.create"}, "methods\0casefile\0")
    assert decode_page_token(token, "methods\0casefile\0", after=str) == {
        "after": "casefile.create"}
    assert decode_page_token("", "anything", after=str) == {}
    wrong_type = encode_page_token({"id": 5}, "runs\0wf_a")
    for bad, scope in ((token, "methods\0billing\0"),  # other filters
                       (token, "tools"),  # another listing
                       ("!!not-a-token!!", "methods\0casefile\0"), ("e30", "tools"),
                       ("bnVsbA", "tools"), (token[:-3], "methods\0casefile\0"),
                       (wrong_type, "runs\0wf_a")):
        with pytest.raises(InvalidArgument) as caught:
            decode_page_token(bad, scope, after=str, id=str)
        assert caught.value.violations[0][0] == "page_token"


def test_a_position_must_fit_a_64_bit_column():
    for position in (10**30, -1, 2**63, True):
        with pytest.raises(InvalidArgument):
            decode_page_token(encode_page_token({"id": position}, "audit"), "audit", id=int)
    token = encode_page_token({"id": 2**63 - 1}, "audit")
    assert decode_page_token(token, "audit", id=int) == {"id": 2**63 - 1}


def test_page_size_defaults_and_caps():
    assert page_size(0, 50, 1000) == 50
    assert page_size(7, 50, 1000) == 7
    assert page_size(5000, 50, 1000) == 1000
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1, 50, 1000)
    assert caught.value.violations == [("page_size", "must not be negative")]
