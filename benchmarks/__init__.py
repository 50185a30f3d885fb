"""pytest-benchmark suites, their shared helpers (``benchmarks._common``) and the comparer."""
