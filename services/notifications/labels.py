"""Words for the codes that events carry (reasons, conditions, label types), per template locale.

The words are data, one file per locale in labels/ next to this module (labels/<locale>.json:
kind -> code -> words), so each language is edited on its own. An unknown
code (a closure code added later, say) is shown as the code itself rather than failing.
"""

from __future__ import annotations

import json
from pathlib import Path

_FOLDER = Path(__file__).parent / "labels"
LABELS: dict[str, dict[str, dict[str, str]]] = {
    path.stem: json.loads(path.read_text(encoding="utf-8")) for path in _FOLDER.glob("*.json")
}


def label(locale: str, kind: str, code: str | None) -> str:
    if code is None:
        return ""
    words = LABELS.get(locale, LABELS["en"]).get(kind, {})
    return words.get(str(code), str(code))
