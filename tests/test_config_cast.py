"""Config text → typed fields, the one caster both recipes use (command-line and YAML values)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from clothingrec.classify import load_config as load_classifier_config
from clothingrec.config_cast import cast_fields
from clothingrec.detect import load_config as load_detect_config


@dataclass
class Example:
    epochs: int = 1
    cap: int | None = None
    lr: float = 0.1
    budget: float | None = None
    flag: bool = False
    name: str = "x"
    folder: str | None = None
    anything: Any = None


@pytest.mark.parametrize("field, text, expected", [
    ("epochs", "3", 3), ("epochs", "1e3", 1000), ("epochs", 4.0, 4),
    ("cap", "null", None), ("cap", "None", None), ("cap", "12", 12),
    ("lr", "2e-3", 0.002), ("lr", 1, 1.0), ("budget", "none", None), ("budget", "0.5", 0.5),
    ("flag", "true", True), ("flag", "No", False), ("flag", "1", True),
    ("name", "none", "none"), ("name", "12", "12"), ("folder", "null", None), ("folder", "data/x", "data/x"),
    ("anything", "DEFAULT", "DEFAULT"), ("anything", "true", True), ("anything", "2", 2), ("anything", "null", None),
])
def test_text_is_cast_to_the_declared_type(field, text, expected):
    value = cast_fields(Example, {field: text}, "example")[field]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("field, text, message", [
    ("epochs", "2.5", "'epochs'.*not a whole number"), ("lr", "fast", "'lr'.*not a float"),
    ("flag", "maybe", "'flag'.*not a bool"),
])
def test_values_that_do_not_fit_name_the_field(field, text, message):
    with pytest.raises(ValueError, match=message):
        cast_fields(Example, {field: text}, "example")


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="unknown example config field 'epoch'.*epochs, cap"):
        cast_fields(Example, {"epoch": 3}, "example")


def test_both_recipes_cast_command_line_text_the_same_way():
    det = load_detect_config("smoke", epochs="3", time_budget_h="0.5", max_images="null", light_heads="false")
    assert (det.epochs, det.time_budget_h, det.max_images, det.light_heads) == (3, 0.5, None, False)
    clf = load_classifier_config("smoke", epochs="3", time_budget_h="0.5", train_per_class="null", lr_find="false",
                                 resume=True)
    assert (clf.epochs, clf.time_budget_h, clf.train_per_class, clf.lr_find, clf.resume) == (
        3, 0.5, None, False, "true")
