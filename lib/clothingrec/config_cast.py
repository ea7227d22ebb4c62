"""Config fields given as text (papermill ``-r``, ``make ... PARAMS``, YAML quirks) cast to their declared
types; shared by the detection and classification configs."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

_NONE = ("none", "null")
_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def cast_fields(cls, values: dict[str, Any], what: str) -> dict[str, Any]:
    """Check every name is a field of the dataclass ``cls`` and cast each value to the field's type.

    Text becomes None, a bool, an int or a float where the field's annotation allows it; a number is
    cast between int and float the same way.  A value that does not fit raises ``ValueError`` naming
    the field; an unknown name raises ``KeyError`` listing the known ones.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    for key, value in values.items():
        if key not in names:
            raise KeyError(f"unknown {what} config field {key!r}; known: {', '.join(names)}")
        try:
            out[key] = cast_value(value, hints[key])
        except ValueError as exc:
            raise ValueError(f"{what} config field {key!r}: {exc}") from None
    return out


def cast_value(value: Any, hint: Any) -> Any:
    """``value`` as the annotation ``hint`` (``int``, ``float | None``, ``bool``, ``Any``, ...) wants it."""
    if hint is Any:
        allowed = (type(None), bool, int, str)
    else:
        allowed = typing.get_args(hint) or (hint,)
    if isinstance(value, str):
        text = value.strip()
        low = text.lower()
        if low in _NONE and type(None) in allowed:
            return None
        if bool in allowed and (low in _BOOL if hint is not Any else low in ("true", "false")):
            return _BOOL[low]
        if int in allowed and _is_number(text):
            return _integral(float(text), text) if float not in allowed else float(text)
        if float in allowed and _is_number(text):
            return float(text)
        if str not in allowed and any(t in allowed for t in (int, float, bool)):
            raise ValueError(f"{value!r} is not a {' or '.join(t.__name__ for t in allowed if t is not type(None))}")
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and int in allowed and float not in allowed:
        return _integral(value, value)
    if isinstance(value, int) and float in allowed and int not in allowed:
        return float(value)
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _integral(number: float, shown) -> int:
    if not number.is_integer():
        raise ValueError(f"{shown!r} is not a whole number")
    return int(number)
