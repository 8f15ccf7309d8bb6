"""The Redis Functions library this package loads into servers without the zrq module.

`zrq.lua` is the text `zrq lua print` prints (the lua-compat crate's library), copied into the
package by `clients/python/scripts/sync-library`; a test checks that it is identical, so the
package always runs the library of the zrq it ships with.
"""

from __future__ import annotations

import re
from importlib import resources

TEXT: str = resources.files("zrq").joinpath("zrq.lua").read_text(encoding="utf-8")


def _version(text: str) -> str:
    found = re.search(r"^local VERSION = '([^']+)'$", text, re.MULTILINE)
    if found is None:
        raise RuntimeError("zrq.lua carries no `local VERSION = '…'` line")
    return found.group(1)


VERSION: str = _version(TEXT)
"""What `FCALL zrq_version 0` answers once this library is loaded."""
