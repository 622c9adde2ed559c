"""Carry a GGUF model that is too big for one trip to the GPU machine, in two trips.

The GPU machine receives at most 64 MiB per call; the default model is 98 MB. ``split`` writes:

- ``first.gguf``: a valid, smaller GGUF made of the real model's metadata (``block_count`` cut to the
  first N layers), its embedding, output norm and first N layers, every tensor byte-identical to the
  real file. It loads and runs on its own (a truncated real model: real tokenizer, template, shapes).
- ``rest.bin`` + ``manifest.json``: every byte of the real file that ``first.gguf`` lacks, and the
  list of segments that rebuild the real file from the two (checked by size and SHA-256).

``rebuild`` needs only the standard library (the GPU machine has no ``gguf`` package).

    python tests/gpu/carry_model.py split REAL.gguf OUTDIR --layers 8
    python tests/gpu/carry_model.py rebuild FIRST.gguf REST_DIR OUT.gguf
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _layer_of(name: str) -> int | None:
    """Layer index of a ``blk.N.*`` tensor, None for the others."""
    parts = name.split(".")
    if len(parts) > 2 and parts[0] == "blk" and parts[1].isdigit():
        return int(parts[1])
    return None


def split(real: Path, outdir: Path, layers: int) -> dict[str, Any]:
    """Write first.gguf, rest.bin and manifest.json for ``real`` into ``outdir``."""
    import gguf  # only needed here, not on the GPU machine

    reader = gguf.GGUFReader(str(real))
    arch = str(reader.fields["general.architecture"].contents())
    count_key = f"{arch}.block_count"
    total_layers = int(reader.fields[count_key].contents())
    if not 0 < layers <= total_layers:
        raise SystemExit(f"--layers must be in 1..{total_layers}")

    outdir.mkdir(parents=True, exist_ok=True)
    first = outdir / "first.gguf"
    writer = gguf.GGUFWriter(str(first), arch=arch, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        value: Any = field.contents()
        if field.name == count_key:
            value = layers
        elif field.name == "general.name":
            value = f"{value} (first {layers} of {total_layers} layers)"
        writer.add_key_value(field.name, value, value_type, sub_type=sub_type)
    kept = [t for t in reader.tensors if (_layer_of(t.name) is None or (_layer_of(t.name) or 0) < layers)]
    for tensor in kept:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in kept:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()

    first_offsets = {t.name: int(t.data_offset) for t in gguf.GGUFReader(str(first)).tensors}
    real_bytes = real.read_bytes()
    segments: list[list[Any]] = []
    rest = bytearray()

    def take_rest(start: int, end: int) -> None:
        if end <= start:
            return
        if segments and segments[-1][0] == "rest":
            segments[-1][2] += end - start
        else:
            segments.append(["rest", len(rest), end - start])
        rest.extend(real_bytes[start:end])

    position = 0
    for tensor in sorted(reader.tensors, key=lambda t: int(t.data_offset)):
        start, size = int(tensor.data_offset), int(tensor.n_bytes)
        if tensor.name in first_offsets:
            take_rest(position, start)
            segments.append(["first", first_offsets[tensor.name], size])
        else:
            take_rest(position, start + size)
        position = start + size
    take_rest(position, len(real_bytes))

    (outdir / "rest.bin").write_bytes(bytes(rest))
    manifest = {
        "real_name": real.name,
        "size": len(real_bytes),
        "sha256": hashlib.sha256(real_bytes).hexdigest(),
        "first_sha256": _sha256(first),
        "layers_in_first": layers,
        "layers_total": total_layers,
        "segments": segments,
    }
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def rebuild(first: Path, rest_dir: Path, out: Path) -> None:
    """Rebuild the real model from first.gguf and rest_dir/{rest.bin,manifest.json}; verify it."""
    manifest = json.loads((rest_dir / "manifest.json").read_text())
    if _sha256(first) != manifest["first_sha256"]:
        raise SystemExit(f"{first} is not the first part this manifest was made with")
    sources = {"first": first, "rest": rest_dir / "rest.bin"}
    handles = {key: path.open("rb") for key, path in sources.items()}
    try:
        with out.open("wb") as sink:
            for source, offset, size in manifest["segments"]:
                handle = handles[source]
                handle.seek(offset)
                left = size
                while left:
                    block = handle.read(min(CHUNK, left))
                    if not block:
                        raise SystemExit(f"{sources[source]} is shorter than the manifest says")
                    sink.write(block)
                    left -= len(block)
    finally:
        for handle in handles.values():
            handle.close()
    if out.stat().st_size != manifest["size"] or _sha256(out) != manifest["sha256"]:
        raise SystemExit(f"rebuilt {out} does not match the real model (size or SHA-256)")


def main(argv: list[str] | None = None) -> int:
    """Command line: ``split`` or ``rebuild``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    split_cmd = commands.add_parser("split", help="make first.gguf + rest.bin + manifest.json")
    split_cmd.add_argument("real", type=Path)
    split_cmd.add_argument("outdir", type=Path)
    split_cmd.add_argument("--layers", type=int, default=8)
    rebuild_cmd = commands.add_parser("rebuild", help="rebuild the real model and check its SHA-256")
    rebuild_cmd.add_argument("first", type=Path)
    rebuild_cmd.add_argument("rest_dir", type=Path)
    rebuild_cmd.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "split":
        manifest = split(args.real, args.outdir, args.layers)
        print(
            f"first.gguf: {(args.outdir / 'first.gguf').stat().st_size} bytes, "
            f"rest.bin: {(args.outdir / 'rest.bin').stat().st_size} bytes, "
            f"{len(manifest['segments'])} segments"
        )
    else:
        rebuild(args.first, args.rest_dir, args.out)
        print(f"rebuilt {args.out}: SHA-256 matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
