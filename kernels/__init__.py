"""Triton kernels, one op per module, shipped as ``mlservices.kernels``.

Each module holds the jit kernel(s), the launcher and its registration as the torch custom op
``mlservices_triton::<op>``; ``mlservices.ops._triton`` imports them and hands them to the
dispatcher. Block sizes and warp counts come from ``_utils``.

Keep the block below (it belongs to the package layout, not to a kernel): this folder is never
a top-level module. When Python runs from the repository root, the root is on sys.path and
``import kernels`` would find this folder instead of the unrelated ``kernels`` distribution that
transformers imports; then this module hands the name over to the real package (found on the
rest of sys.path) so neither project breaks.
"""

if __name__ == "kernels":
    import importlib.machinery
    import importlib.util
    import os
    import sys

    _repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _spec = None
    for _entry in sys.path:
        if os.path.abspath(_entry or os.getcwd()) == _repo_root:
            continue
        _spec = importlib.machinery.PathFinder.find_spec("kernels", [_entry])
        if _spec is not None:
            break
    if _spec is None:
        del sys.modules["kernels"]
        raise ImportError(
            "no top-level 'kernels' package is installed (this folder is mlservices.kernels)"
        )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["kernels"] = _module
    _spec.loader.exec_module(_module)
