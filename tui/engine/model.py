"""Loading a GGUF model with llama-cpp-python: checks first, llama.cpp's log captured, facts reported.

Never uses ``verbose=False``: that wraps loading in a redirect of file descriptors 1 and 2 for
the whole process (a running TUI would lose its screen). Instead llama.cpp's log goes through
our own ``llama_log_set`` callback, and llama-cpp-python's Python-side prints are captured.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settings.config import N_CTX_STEP
from tui.engine.events import ModelInfo, ModelLoadError

GGUF_MAGIC = b"GGUF"
GGUF_HEADER_SIZE = 24
"""magic (4) + version (4) + tensor count (8) + metadata count (8)."""
SUPPORTED_GGUF_VERSIONS = (2, 3)

# ggml log levels (llama-cpp-python's own map is stale): 1 debug, 2 info, 3 warn, 4 error, 5 continue
LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_CONT = 1, 2, 3, 4, 5
_OFFLOADED_RE = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
_ASSIGNED_RE = re.compile(r"layer\s+\d+ assigned to device (\S+?),")
_FILE_TYPE_RE = re.compile(r"file type\s*=\s*(\S+)")
_BACKEND_HINTS = ("CUDA", "Metal", "Vulkan", "ROCm", "SYCL")


class LlamaLog:
    """llama.cpp's log, captured through ``llama_log_set`` (one process-wide callback).

    Keeps the last lines in memory; ``TOKENDIAL_LLAMA_LOG=path`` also appends them to a file.
    """

    def __init__(self, keep: int = 2000) -> None:
        self.lines: deque[tuple[int, str]] = deque(maxlen=keep)
        self._partial = ""
        self._count = 0
        self._level = LOG_INFO
        self._lock = threading.Lock()
        self._callback: Any = None
        self.interrupted = False
        """Ctrl-C arrived while llama.cpp was calling back (see :func:`load_model`)."""

    def install(self) -> None:
        """Route llama.cpp's log here (idempotent; keeps a reference to the ctypes callback)."""
        import llama_cpp

        if self._callback is not None:
            return

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def _on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
            try:
                self.write(level, text.decode("utf-8", errors="replace"))
            except KeyboardInterrupt:  # ctypes would swallow it: load_model raises it after the call
                self.interrupted = True

        self._callback = _on_log
        llama_cpp.llama_log_set(_on_log, ctypes.c_void_p(0))

    def write(self, level: int, text: str) -> None:
        """Add text from llama.cpp (may be a fragment of a line)."""
        with self._lock:
            if level != LOG_CONT:
                self._level = level
            self._partial += text
            while "\n" in self._partial:
                line, self._partial = self._partial.split("\n", 1)
                self.lines.append((self._level, line))
                self._count += 1
        target = os.environ.get("TOKENDIAL_LLAMA_LOG")
        if target:
            with contextlib.suppress(OSError), open(target, "a", encoding="utf-8") as handle:
                handle.write(text)

    def mark(self) -> int:
        """A position to read the log from (see :meth:`since`)."""
        with self._lock:
            return self._count

    def since(self, mark: int) -> list[tuple[int, str]]:
        """Lines written after ``mark`` (as far as still kept)."""
        with self._lock:
            lines = list(self.lines)
            wanted = self._count - mark
        return lines[len(lines) - min(wanted, len(lines)) :] if wanted > 0 else []

    def text(self) -> str:
        """All kept lines as text."""
        with self._lock:
            return "\n".join(line for _, line in self.lines)


LLAMA_LOG = LlamaLog(keep=100_000)
"""The process-wide llama.cpp log (one callback for the whole process)."""


def round_ctx(n_ctx: int) -> int:
    """Round a context size up to llama.cpp's multiple of 256."""
    return max(N_CTX_STEP, -(-n_ctx // N_CTX_STEP) * N_CTX_STEP)


def check_model_file(path: Path) -> None:
    """Raise ModelLoadError with a clear message unless ``path`` looks like a readable GGUF file."""
    shown = str(path)
    try:
        path.stat()
    except FileNotFoundError:
        raise ModelLoadError(
            f"Model file not found: {shown}",
            "Check the path, or run `tokendial fetch` to download the default model.",
        ) from None
    except OSError as exc:  # a name too long, a folder on the way that is a file, a loop of links...
        raise ModelLoadError(f"Cannot use {shown[:200]}: {exc.strerror or exc}.") from None
    if path.is_dir():
        raise ModelLoadError(f"{shown} is a directory, not a model file.", "Pick a .gguf file inside it.")
    if not path.is_file():
        raise ModelLoadError(f"{shown} is not a regular file.")
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(GGUF_HEADER_SIZE)
    except PermissionError:
        raise ModelLoadError(f"Cannot read {shown}: permission denied.") from None
    except OSError as exc:
        raise ModelLoadError(f"Cannot read {shown}: {exc.strerror or exc}.") from None
    if size == 0:
        raise ModelLoadError(f"{shown} is empty (0 bytes).", "The download may have failed; fetch it again.")
    if header[:4] != GGUF_MAGIC:
        raise ModelLoadError(
            f"{shown} is not a GGUF model file (it starts with {header[:4]!r}, not b'GGUF').",
            "llama.cpp needs a .gguf file; convert the model or download a GGUF build of it.",
        )
    if len(header) < GGUF_HEADER_SIZE:
        raise ModelLoadError(f"{shown} is truncated: only {size} bytes, shorter than a GGUF header.")
    version = int.from_bytes(header[4:8], "little")
    if version not in SUPPORTED_GGUF_VERSIONS:
        raise ModelLoadError(f"{shown} is GGUF version {version}, which this llama.cpp cannot read.")


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A loaded ``llama_cpp.Llama`` and what we learnt while loading it."""

    llm: Any
    info: ModelInfo
    chat_template: str | None
    """The GGUF's own Jinja chat template, if any."""
    bos_text: str
    eos_text: str


def load_model(
    path: Path, *, n_ctx: int, n_gpu_layers: int, n_threads: int | None, flash_attn: bool = True
) -> LoadedModel:
    """Load a GGUF file; every failure becomes a ModelLoadError with a message for the user."""
    path = Path(path).expanduser()
    check_model_file(path)
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - broken install
        raise ModelLoadError(f"llama-cpp-python is not installed or broken: {exc}") from None

    problem = amx_trap_problem(llama_cpp.llama_print_system_info().decode(errors="replace"), _cpu_flags())
    if problem and not os.environ.get("TOKENDIAL_ALLOW_AMX"):
        raise ModelLoadError(*problem)
    LLAMA_LOG.install()
    LLAMA_LOG.interrupted = False
    mark = LLAMA_LOG.mark()
    printed = io.StringIO()
    kwargs: dict[str, Any] = {
        "model_path": str(path),
        "n_ctx": round_ctx(n_ctx),
        "n_gpu_layers": n_gpu_layers,
        "verbose": True,  # never False: see the module docstring
    }
    if n_threads:
        kwargs["n_threads"] = n_threads
        kwargs["n_threads_batch"] = n_threads
    try:
        with contextlib.redirect_stderr(printed), contextlib.redirect_stdout(printed):
            try:
                llm = llama_cpp.Llama(**kwargs, flash_attn=flash_attn)
            except ValueError as exc:
                if not flash_attn or "context" not in str(exc).lower():
                    raise
                # A context with flash attention failed; the model itself may still load without.
                llm = llama_cpp.Llama(**kwargs, flash_attn=False)
    except Exception as exc:
        raise _load_failure(path, exc, LLAMA_LOG.since(mark)) from None
    if LLAMA_LOG.interrupted and threading.current_thread() is threading.main_thread():
        llm.close()
        raise KeyboardInterrupt
    llm.verbose = False
    for line in printed.getvalue().splitlines():
        LLAMA_LOG.write(LOG_DEBUG, f"llama-cpp-python: {line}\n")
    log = LLAMA_LOG.since(mark)
    info = _model_info(llm, path, n_gpu_layers, log)
    metadata: dict[str, str] = dict(llm.metadata or {})
    template = metadata.get("tokenizer.chat_template") or None
    bos_text = _token_text(llm, llm.token_bos())
    return LoadedModel(llm=llm, info=info, chat_template=template, bos_text=bos_text, eos_text=info.eos_text)


def _cpu_flags() -> frozenset[str] | None:
    """The CPU flags the kernel enables (Linux /proc/cpuinfo), or None where that can't be read."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


def amx_trap_problem(system_info: str, cpu_flags: frozenset[str] | None) -> tuple[str, str] | None:
    """(message, hint) when this llama.cpp build would die with SIGILL at the first token.

    A native build on a CPU that reports AMX in CPUID compiles AMX kernels in (``AMX_INT8 = 1`` in
    llama.cpp's system info); where the kernel does not enable AMX (no ``amx_tile`` flag, as in many
    VMs) the first AMX instruction traps and kills the whole process. Set TOKENDIAL_ALLOW_AMX=1 to
    load anyway.
    """
    if "AMX_INT8 = 1" not in system_info or cpu_flags is None or "amx_tile" in cpu_flags:
        return None
    return (
        "This llama-cpp-python build uses AMX instructions, which this machine's CPU or kernel does not "
        "enable: it would crash (SIGILL in ggml_backend_amx_mul_mat) at the first token.",
        "Rebuild it with safe CPU flags: tui/scripts/install.sh --rebuild-llama (see the README's "
        "Troubleshooting), or set TOKENDIAL_ALLOW_AMX=1 to try anyway.",
    )


def _load_failure(path: Path, exc: Exception, log: list[tuple[int, str]]) -> ModelLoadError:
    """Turn llama.cpp's failure (a bare ValueError) into a clear message from its error log."""
    errors = [line.strip() for level, line in log if level == LOG_ERROR and line.strip()]
    detail = "; ".join(dict.fromkeys(_tidy(line) for line in errors[-4:])) or str(exc)
    lowered = detail.lower()
    if "unknown model architecture" in lowered:
        arch = re.search(r"architecture: '([^']*)'", detail)
        name = arch.group(1) if arch else "?"
        return ModelLoadError(
            f"{path} uses model architecture {name!r}, which this llama.cpp build does not know.",
            "Upgrade llama-cpp-python, or use a model with a supported architecture.",
        )
    truncated = ("not within the file bounds", "truncat", "unexpected end", "exceeds remaining file size")
    if any(sign in lowered for sign in truncated):
        return ModelLoadError(
            f"{path} is truncated or corrupt ({detail}).", "The download may be incomplete; fetch it again."
        )
    if "insufficient memory" in lowered or "failed to allocate" in lowered or "out of memory" in lowered:
        return ModelLoadError(
            f"Not enough memory to load {path}: {detail}",
            "Lower n_ctx (the KV cache grows with it), or n_gpu_layers when the GPU is full.",
        )
    return ModelLoadError(f"llama.cpp could not load {path}: {detail}")


def _tidy(line: str) -> str:
    return re.sub(r"^\w+:\s*", "", line).rstrip(".")


def _token_text(llm: Any, token: int) -> str:
    """A token's text with special tokens rendered (256-byte buffer, never the 32-byte one)."""
    import llama_cpp

    if token < 0:
        return ""
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buf, len(buf), 0, True)
    return buf.raw[: max(n, 0)].decode("utf-8", errors="replace")


def _size_label(n_params: int) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n_params >= scale:
            value = n_params / scale
            return f"{value:.0f}{suffix}" if value >= 10 else f"{value:.1f}{suffix}"
    return str(n_params)


def _model_info(llm: Any, path: Path, n_gpu_layers: int, log: list[tuple[int, str]]) -> ModelInfo:
    import llama_cpp

    metadata: dict[str, str] = dict(llm.metadata or {})
    arch = metadata.get("general.architecture", "?")
    text = "\n".join(line for _, line in log)
    offloaded = total = None
    if match := _OFFLOADED_RE.search(text):
        offloaded, total = int(match.group(1)), int(match.group(2))
    else:
        assigned = _ASSIGNED_RE.findall(text)
        if assigned:
            total = len(assigned)
            offloaded = sum(1 for device in assigned if not device.upper().startswith("CPU"))
    if total is None:
        with contextlib.suppress(Exception):
            total = int(llama_cpp.llama_model_n_layer(llm.model)) + 1  # + the output layer
    quant = ""
    if match := _FILE_TYPE_RE.search(text):
        quant = match.group(1)
    if not quant:
        with contextlib.suppress(Exception):
            quant = llm._model.desc().split()[-1]
    supported = bool(llama_cpp.llama_supports_gpu_offload())
    backend = "CPU"
    if supported:
        for name in _BACKEND_HINTS:
            if name in text:
                backend = name
                break
        else:
            backend = "GPU"
    warnings: list[str] = []
    if n_gpu_layers != 0 and not supported:
        warnings.append(
            f"GPU OFFLOAD UNAVAILABLE: n_gpu_layers={n_gpu_layers} was asked for, but this "
            "llama-cpp-python build has no GPU support, so the model runs on the CPU. "
            'Reinstall llama-cpp-python with GPU support (e.g. CMAKE_ARGS="-DGGML_CUDA=on").'
        )
    elif n_gpu_layers != 0 and (offloaded or 0) == 0:
        warnings.append(
            f"NO LAYERS ON THE GPU: n_gpu_layers={n_gpu_layers} was asked for, but llama.cpp "
            "offloaded none (no usable GPU device found?). The model runs on the CPU."
        )
    elif n_gpu_layers != 0 and offloaded is not None and total is not None:
        wanted = total if n_gpu_layers < 0 else min(n_gpu_layers, total)
        if offloaded < wanted:
            warnings.append(
                f"ONLY {offloaded}/{total} LAYERS ON THE GPU (asked for {wanted}): the rest run on "
                "the CPU, which is much slower. Not enough GPU memory?"
            )
    eos = llm.token_eos()
    n_params = 0
    with contextlib.suppress(Exception):
        n_params = int(llm._model.n_params())
    ctx_train = 0
    with contextlib.suppress(Exception):
        ctx_train = int(llama_cpp.llama_model_n_ctx_train(llm.model))
    return ModelInfo(
        path=path,
        name=metadata.get("general.name") or path.stem,
        architecture=arch,
        size_label=metadata.get("general.size_label") or (_size_label(n_params) if n_params else "?"),
        quantization=quant or "?",
        file_size=path.stat().st_size,
        n_ctx=int(llm.n_ctx()),
        n_ctx_train=ctx_train,
        n_vocab=int(llm.n_vocab()),
        has_chat_template=bool(metadata.get("tokenizer.chat_template")),
        eos_text=_token_text(llm, eos),
        backend=backend,
        gpu_offload_supported=supported,
        gpu_layers_requested=n_gpu_layers,
        gpu_layers_offloaded=offloaded,
        layers_total=total,
        warnings=tuple(warnings),
    )
