"""`If-Match` (RFC 9110 §13.1.1): parsed once, compared strongly, a stale one answers 412.

`*` matches any current representation (the resource exists), so it sets no condition. A weak tag
(`W/"3"`) never matches under the strong comparison If-Match requires; neither does a tag that is
no version of ours (`"abc"`): both are preconditions that fail, not malformed requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.http.problems import PreconditionFailed, Unprocessable

MAX_IF_MATCH_CHARS = 256
# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; a bare token is accepted as the opaque tag (lenient).
_TAG = re.compile(r'\s*(W/)?("([\x21\x23-\x7e\x80-\xff]*)"|([\x21\x23-\x2b\x2d-\x7e]+))\s*')


@dataclass(frozen=True, slots=True)
class IfMatch:
    """The strong tags an `If-Match` lists; the change may proceed only at one of them."""

    tags: frozenset[str]

    def admits(self, version: int) -> bool:
        return str(version) in self.tags

    def check(self, version: int, noun: str = "resource") -> None:
        """PreconditionFailed (412) unless the current `version` is one of the listed tags."""
        if not self.admits(version):
            listed = ", ".join(f'"{tag}"' for tag in sorted(self.tags)) or "no strong tag"
            raise PreconditionFailed(
                f'The {noun} is at version "{version}", not {listed}; reload it and retry.',
                current_etag=f'"{version}"',
            )


def parse_if_match(header: str | None) -> IfMatch | None:
    """None when there is no condition (absent or `*`); 422 naming If-Match when it is no tag list."""
    if header is None or header.strip() == "*":
        return None
    tags: set[str] = set()
    for item in header.split(",") if len(header) <= MAX_IF_MATCH_CHARS else ["\x00"]:
        match = _TAG.fullmatch(item)
        if match is None:
            raise Unprocessable(
                'If-Match must list entity tags, e.g. "3".',
                errors=[{"field": "If-Match", "location": "header", "reason": "not an entity-tag list"}],
            )
        if match.group(1) is None:  # weak tags never match strongly: leave them out
            tags.add(match.group(3) if match.group(3) is not None else match.group(4))
    return IfMatch(frozenset(tags))
