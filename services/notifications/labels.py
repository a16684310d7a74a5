"""Words for the codes that events carry (reasons, conditions, label types), per template locale.

The words are data, in labels.json next to this module: locale -> kind -> code -> words. An unknown
code (a closure code added later, say) is shown as the code itself rather than failing.
"""

from __future__ import annotations

import json
from pathlib import Path

LABELS: dict[str, dict[str, dict[str, str]]] = json.loads(
    (Path(__file__).parent / "labels.json").read_text(encoding="utf-8")
)


def label(locale: str, kind: str, code: str | None) -> str:
    if code is None:
        return ""
    words = LABELS.get(locale, LABELS["en"]).get(kind, {})
    return words.get(str(code), str(code))
