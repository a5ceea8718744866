"""The house rules the layout promises (README "The house"), checked on the source tree."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

BLINK = Path(__file__).resolve().parents[2] / "blink"
MODULES = sorted(p for p in BLINK.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_is_longer_than_300_lines():
    long = {str(p.relative_to(BLINK)): n for p in MODULES
            if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


def test_no_file_name_is_used_twice():
    names = Counter(p.name for p in MODULES if p.name not in ("__init__.py", "__main__.py"))
    assert [n for n, c in names.items() if c > 1] == []


def test_at_most_eight_modules_sit_flat_in_blink():
    flat = [p.name for p in BLINK.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(flat) <= 8, flat


def test_every_app_key_is_typed_with_a_real_class():
    tree = ast.parse((BLINK / "runtime" / "keys.py").read_text())
    keys = [n for n in tree.body if isinstance(n, ast.AnnAssign)]
    assert len(keys) >= 17
    for node in keys:
        annotation = ast.unparse(node.annotation)
        assert annotation.startswith("web.AppKey[") and "Any" not in annotation, annotation
    assert not [n for n in tree.body if isinstance(n, ast.Assign)]  # no untyped key left
