"""Untrusted files stay harmless: every checkpoint load is weights-only, YAML is safe-loaded, no pickle is read,
and a malicious file given as pretrained weights runs nothing."""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import dcvkit
from conftest import assert_one_line_error, quick_args, run

SRC = Path(dcvkit.__file__).parent


def _calls(name: str):
    """(file, call node) for every call of ``<module>.<name>(...)`` in dcvkit's source."""
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                yield path, node


def test_every_torch_load_is_weights_only():
    loads = [(p, n) for p, n in _calls("load") if isinstance(n.func.value, ast.Name) and n.func.value.id == "torch"]
    assert loads, "no torch.load found: the check looks in the wrong place"
    for path, node in loads:
        flags = {k.arg: k.value for k in node.keywords}
        assert "weights_only" in flags and getattr(flags["weights_only"], "value", None) is True, \
            f"{path}:{node.lineno}: torch.load without weights_only=True"


def test_no_unsafe_deserialisers():
    for name in ("unsafe_load", "full_load"):
        assert not list(_calls(name)), name
    for path, node in _calls("load"):
        module = getattr(node.func.value, "id", None)
        assert module not in ("yaml", "pickle", "dill", "marshal"), f"{path}:{node.lineno}: {module}.load"
        if module == "np" or module == "numpy":
            flags = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
            assert flags.get("allow_pickle") is not True, f"{path}:{node.lineno}: np.load(allow_pickle=True)"


def test_malicious_pretrained_weights_run_nothing(tmp_path, idx_dir, capsys):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "weights.pt"
    evil.write_bytes(pickle.dumps({"state_dict": Evil()}))
    code, _, err = run(capsys, "classify", "train", "--data-dir", str(idx_dir), "--pretrained", str(evil),
                       *quick_args("--epochs", "1"))
    assert_one_line_error(code, err, "weights.pt")
    assert not (tmp_path / "pwned").exists()
