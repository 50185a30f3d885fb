"""Command line: ``mlservices embed | bench | info``.

``embed`` reads .txt (one text per line) or .jsonl (one object per line, a string field), writes
float32 [n, dim] .npy rows in input order and prints a summary. Bad input exits non-zero with a
message that names the line; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
from pathlib import Path

from mlservices.errors import MLServicesError, ValidationError
from mlservices.pipeline import unicode_problem

logger = logging.getLogger("mlservices.cli")

EXIT_BAD_INPUT = 2


def read_texts(path: Path, field: str = "text") -> list[str]:
    """Texts from a .txt (one per line) or .jsonl (``field`` of each object) file.

    Raises:
        ValidationError: unreadable file, bad suffix, or a bad line (the message names it).
    """
    if not path.is_file():
        raise ValidationError(f"input file {path} does not exist", hint="check the path")
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".jsonl"):
        raise ValidationError(
            f"input {path} must be .txt (one text per line) or .jsonl, got {suffix or 'no suffix'}"
        )
    if path.is_dir():
        raise ValidationError(f"input {path} is a directory, not a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_no = data[: exc.start].count(b"\n") + 1
        raise ValidationError(
            f"{path.name} line {line_no} is not UTF-8 text ({exc.reason})", line=line_no
        ) from exc
    # Lines end at \n only: other Unicode separators (U+2028, \x0b, \x85 ...) belong to the text.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if suffix == ".txt":
        records = [(n, line) for n, line in enumerate(lines, 1)]
    else:
        records = [
            (n, _jsonl_text(path, n, line, field))
            for n, line in enumerate(lines, 1)
            if line.strip()
        ]
    for n, value in records:
        _check_unicode(path, n, value)
    return [value for _, value in records]


def _check_unicode(path: Path, line_no: int, text: str) -> None:
    problem = unicode_problem(text)
    if problem is not None:
        raise ValidationError(
            f"{path.name} line {line_no} holds an invalid code point ({problem})",
            hint="remove lone surrogates (\\ud800-\\udfff escapes) from the input",
            line=line_no,
        )


def _jsonl_text(path: Path, line_no: int, line: str, field: str) -> str:
    where = f"{path.name} line {line_no}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{where} is not valid JSON ({exc.msg})", line=line_no) from exc
    if not isinstance(record, dict):
        raise ValidationError(
            f"{where} is a JSON {type(record).__name__}, expected an object", line=line_no
        )
    if field not in record:
        raise ValidationError(
            f"{where} has no field {field!r} (fields: {', '.join(map(str, record)) or 'none'})",
            hint="choose the field with --field",
            line=line_no,
        )
    value = record[field]
    if not isinstance(value, str):
        raise ValidationError(
            f"{where}: field {field!r} is {type(value).__name__}, expected a string", line=line_no
        )
    return value


def peak_memory_mib(device) -> float:
    """Peak resident memory of this process (CPU) or peak allocated device memory (CUDA)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from mlservices.encoder import Encoder

    output = Path(args.output)
    if output.suffix.lower() != ".npy":
        raise ValidationError(f"output {output} must end in .npy")
    texts = read_texts(Path(args.input), args.field)
    encoder = Encoder.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    embeddings = encoder.encode(
        texts,
        args.batch_size,
        normalize_embeddings=args.normalize,
        show_progress_bar=sys.stderr.isatty(),
        max_batch_tokens=args.max_batch_tokens,
    )
    embeddings = np.asarray(embeddings, dtype=np.float32).reshape(
        len(texts), encoder.embedding_dimension
    )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        np.save(output, embeddings)
    except OSError as exc:
        raise ValidationError(
            f"cannot write {output}: {exc.strerror or exc}", hint="choose a writable path"
        ) from exc
    stats = encoder.last_stats
    summary = {
        "texts": stats.texts,
        "tokens": stats.tokens,
        "seconds": round(stats.seconds, 3),
        "texts/s": round(stats.texts_per_second, 1),
        "tokens/s": round(stats.tokens_per_second, 1),
        "texts truncated": stats.truncated,
        "padding avoided (tokens)": stats.padding_avoided,
        "peak memory (MiB)": round(peak_memory_mib(encoder.device), 1),
        "output": f"{output} float32 {list(embeddings.shape)}",
        "model": f"{encoder.spec.path} on {encoder.device} ({args.dtype or 'float32'})",
    }
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import torch

    import mlservices
    from mlservices import hardware, ops
    from mlservices.ops import _cpp

    def version(module: str) -> str:
        try:
            return __import__(module).__version__
        except Exception:
            return "not installed"

    print(f"mlservices {mlservices.__version__}, python {platform.python_version()}")
    for name in ("torch", "triton", "transformers", "tokenizers", "numpy"):
        print(f"  {name:<14}{version(name)}")
    cpu = hardware.cpu_info()
    flags = ", ".join(f for f, on in cpu["flags"].items() if on) or "none"
    print(f"cpu: {cpu['model']} ({cpu['cores']} cores; {flags})")
    gpus = hardware.gpu_info()
    for gpu in gpus:
        print(
            f"gpu {gpu['index']}: {gpu['name']} (sm {gpu['capability']}, {gpu['memory_gib']} GiB)"
        )
    if not gpus:
        print(f"gpu: none visible to torch (torch CUDA build: {torch.version.cuda or 'no'})")
    if _cpp.BUILD_INFO is not None:
        print(f"extension mlservices._C: built ({_cpp.BUILD_INFO})")
    else:
        print(f"extension mlservices._C: not available ({_cpp.IMPORT_ERROR})")
    print("backends per op (automatic choice first):")
    for op, per_device in ops.available_backends().items():
        cells = "; ".join(f"{dev}: {', '.join(names)}" for dev, names in per_device.items())
        print(f"  {op:<18}{cells}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlservices", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    embed = sub.add_parser("embed", help="embed a .txt or .jsonl file into a .npy matrix")
    embed.add_argument("input", help=".txt (one text per line) or .jsonl")
    embed.add_argument("-o", "--output", required=True, help="output .npy (float32 [n, dim])")
    embed.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2)")
    embed.add_argument("--field", default="text", help="JSONL field holding the text")
    embed.add_argument("--batch-size", type=int, default=32, help="texts per batch at most")
    embed.add_argument("--max-batch-tokens", type=int, default=None, help="tokens per batch")
    embed.add_argument("--normalize", action="store_true", help="L2-normalise the vectors")
    embed.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: automatic)")
    embed.add_argument(
        "--dtype", default=None, choices=["float32", "float16", "bfloat16"], help="compute dtype"
    )
    embed.set_defaults(handler=cmd_embed)

    info = sub.add_parser("info", help="versions, devices and the backends of each op")
    info.set_defaults(handler=cmd_info)

    bench = sub.add_parser("bench", help="ours vs sentence-transformers: table and PNG plot")
    from mlservices import bench as bench_module

    bench_module.add_arguments(bench)
    bench.set_defaults(handler=bench_module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except MLServicesError as exc:
        print(f"mlservices {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"mlservices {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
