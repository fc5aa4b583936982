"""Protocol files as text: reading TOML with file-naming errors, writing a protocol back to
TOML (the run folder's ``protocol.toml``), and the dotted keys in which two protocols differ."""
from __future__ import annotations

import tomllib
from pathlib import Path

from ..errors import UserError

__all__ = ["read_toml", "to_toml", "diff_configs"]


def read_toml(path: str | Path, what: str = "protocol file") -> dict:
    """The raw table of a TOML file (a training or study protocol).

    Raises:
        FileNotFoundError: missing file (naming ``what``).  UserError: malformed TOML (with
            line/column) or not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: malformed TOML ({e})") from e
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not a UTF-8 text file ({e})") from e


def to_toml(cfg: dict) -> str:
    """Serialise a (validated) protocol dict back to TOML text (for the run folder)."""
    lines: list[str] = []

    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {fmt(x)}" for k, x in v.items()) + "}"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    def emit(table: dict, prefix: str):
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in table.items() if isinstance(v, dict)}
        if prefix:
            lines.append(f"\n[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{k} = {fmt(v)}")
        for k, v in tables.items():
            emit(v, f"{prefix}.{k}" if prefix else k)

    emit(cfg, "")
    return "\n".join(lines).lstrip() + "\n"


def diff_configs(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two protocol dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        key = f"{prefix}{k}"
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff_configs(va, vb, key + ".")
        elif va != vb:
            out.append(key)
    return out
