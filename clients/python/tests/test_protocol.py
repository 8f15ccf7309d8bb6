"""The package's protocol constants are zrq-core's: the shipped library's generated REPLY table."""

from __future__ import annotations

import re

from zrq import _library, _protocol


def test_reply_codes_are_the_generated_ones():
    found = re.search(r"^local REPLY = \{ (.*) \}$", _library.TEXT, re.MULTILINE)
    assert found is not None, "the library carries no generated REPLY table"
    generated = {
        name: int(value)
        for name, value in (pair.split(" = ") for pair in found.group(1).split(", "))
    }
    ours = {
        name: getattr(_protocol, name)
        for name in dir(_protocol)
        if name.isupper() and isinstance(getattr(_protocol, name), int)
    }
    assert ours == generated
