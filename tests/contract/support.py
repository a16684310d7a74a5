"""What the contract tests share: paths, vendored schemas, optional offline tools, JSON helpers."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
LOCAL_BIN = ROOT / ".local" / "bin"
DEPLOY = ROOT / "deploy"
SERVICES = ("returns", "refunds", "notifications", "metrics", "disputes")
IMAGE_ONLY_ENV = {"SERVICE"}  # read by the image's CMD, not by the settings


def tool(*names: str) -> str | None:
    """Path of the first tool found: scripts/install-contract-tools' .local/bin, then PATH."""
    for name in names:
        local = LOCAL_BIN / name
        if local.is_file():
            return str(local)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def run(
    args: list[str], *, stdin: str | None = None, cwd: Path = ROOT, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@functools.cache
def vendored_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def schema_errors(
    validator_class: type[jsonschema.protocols.Validator], schema: dict[str, Any], instance: Any
) -> list[str]:
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def iter_refs(node: Any, path: str = "#") -> Iterator[tuple[str, str]]:
    """(where, target) of every `$ref` in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from iter_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from iter_refs(value, f"{path}/{index}")


def resolve_pointer(document: Any, ref: str) -> Any:
    """The node a local `#/a/b` reference points at; KeyError when it doesn't exist."""
    if not ref.startswith("#/"):
        raise KeyError(f"not a local reference: {ref}")
    node = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def differences(expected: Any, actual: Any, path: str = "", limit: int = 25) -> list[str]:
    """Human-readable paths where two JSON documents differ (first `limit`)."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys(), key=str):
                if key not in b:
                    out.append(f"{where}/{key}: in the code, missing from the committed document")
                elif key not in a:
                    out.append(f"{where}/{key}: in the committed document, no longer in the code")
                else:
                    walk(a[key], b[key], f"{where}/{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{where}/{index}")
        elif a != b:
            out.append(f"{where}: code says {json.dumps(a)[:120]}, committed says {json.dumps(b)[:120]}")

    walk(expected, actual, path)
    return out


def settings_env_names(service: str) -> set[str]:
    """Environment variables the service reads: its settings fields, upper-cased."""
    from tools.contracts import settings_class

    return {name.upper() for name in settings_class(service).model_fields}
