"""Without the compiled extension the package still imports, says so, and embeds correctly on
the reference ops. The extension is hidden from a subprocess by an import blocker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from helpers import assert_parity

BLOCK_EXTENSION = """
import importlib.abc, sys
class HideExtension(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "mlservices._C":
            raise ImportError("mlservices._C hidden for this test")
sys.meta_path.insert(0, HideExtension())
"""

EMBED = """
import json, sys, numpy as np
import mlservices
from mlservices import ops
from mlservices.ops import _cpp
assert _cpp.BUILD_INFO is None, "the extension should be hidden"
print(json.dumps(ops.available_backends()))
texts = json.load(open(sys.argv[1]))
np.save(sys.argv[2], mlservices.Encoder.from_pretrained(device="cpu").encode(texts))
"""


def test_reference_ops_serve_without_extension(tmp_path, corpus_texts, encoder):
    texts = corpus_texts[:12] + [""]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    out = tmp_path / "out.npy"
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_EXTENSION + EMBED, str(tmp_path / "texts.json"), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    backends = json.loads(result.stdout.splitlines()[0])
    for op in ("pool", "layer_norm", "varlen_attention"):
        assert backends[op]["cpu"][0] == "reference" and "cpu" not in backends[op]["cpu"]
    assert_parity(np.load(out), encoder.encode(texts))
