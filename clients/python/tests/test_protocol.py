"""The package's protocol constants are zrq-core's: the shipped library's generated ones."""

from __future__ import annotations

import re

from zrq import _library, _protocol
from zrq.job import State


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
        if name.isupper() and type(getattr(_protocol, name)) is int
    }
    assert ours == generated


def test_key_names_are_the_generated_ones():
    assert f"local EVENTS = '{_protocol.EVENTS}'" in _library.TEXT.splitlines()
    assert f"local LUA_ONLY_KEY_KINDS = {{ '{_protocol.WAKE}' }}" in _library.TEXT.splitlines()
    assert _protocol.events_channel("q") == "zrq:{q}:events"
    assert _protocol.wake_key("q") == "zrq:{q}:wake"


def test_states_are_the_generated_ones():
    found = re.search(r"^local STATES = \{ (.*) \}$", _library.TEXT, re.MULTILINE)
    assert found is not None, "the library carries no generated STATES table"
    generated = [name.strip("'") for name in found.group(1).split(", ")]
    assert [state.value for state in State] == generated
