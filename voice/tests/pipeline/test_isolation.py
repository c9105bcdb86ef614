"""The pipeline must stay usable outside Django (CLI simulator, benchmarks)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

PIPELINE = pathlib.Path(__file__).resolve().parents[2] / "pipeline"


def test_no_module_imports_django():
    for path in sorted(PIPELINE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root not in {"django", "rest_framework", "channels"}, f"{path.name}: {name}"
                assert root not in {"clinic", "accounts", "billing", "audit", "vaani"}, (
                    f"{path.name} imports project app {name}"
                )


def test_importing_the_pipeline_loads_no_django():
    pytest.importorskip("numpy", reason="voice pipeline needs numpy")
    root = PIPELINE.parents[1]
    code = (
        "import sys\n"
        "import voice.pipeline.codecs, voice.pipeline.pacing, voice.pipeline.providers\n"
        "import voice.pipeline.stt, voice.pipeline.tts, voice.pipeline.vad\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'django')\n"
        "assert not bad, bad\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
