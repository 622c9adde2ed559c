"""llama.cpp's sampler chain, run one stage at a time so every cut is seen.

The chain is built from :class:`SamplingParams` the way llama.cpp's ``common_sampler`` builds it:
logit bias and the grammar first (the *constraints*), then the samplers in the order
``params.samplers`` gives (only those that are on), then the draw (``dist``). Mirostat replaces the
ordered samplers (as in llama.cpp: constraints, temperature, mirostat); greedy keeps the
constraints, penalties and DRY and takes the arg-max of what they leave.

Each stage is a real ``llama_sampler`` object applied with ``llama_sampler_apply`` to one
``llama_token_data_array``; between stages the engine looks at which tokens are left, so the
survivors and probabilities it reports are llama.cpp's own. Stage objects are reused across a
live parameter change when their own settings did not change (their state — penalty and DRY
history, grammar position, mirostat's mu, the random generators — carries on); a stage whose
settings changed is built anew and, for penalties, DRY and the grammar, replays the reply's
tokens. A new mirostat stage starts at mu = 2·tau (llama.cpp has no way to set mu).

No Textual here: the engine, tests and benchmarks use it directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from settings.sampling import Mirostat, SamplerName, SamplingParams, bias_problem
from tui.engine.events import CutBy, EngineError

MIROSTAT_M = 100
"""Mirostat v1 estimates the distribution's shape from this many top tokens (llama.cpp's value)."""
SEED_STEP = 0x9E3779B1
"""A stage rebuilt mid-reply is seeded with seed + k * this (deterministic, not a replay)."""
SEED_MOD = 2**32 - 1

STAGE_CUTS: dict[str, CutBy] = {
    "logit_bias": CutBy.BANNED,
    "grammar": CutBy.GRAMMAR,
    "top_n_sigma": CutBy.TOP_N_SIGMA,
    "top_k": CutBy.TOP_K,
    "typ_p": CutBy.TYPICAL,
    "top_p": CutBy.TOP_P,
    "min_p": CutBy.MIN_P,
    "xtc": CutBy.XTC,
    "temperature": CutBy.TEMPERATURE,
    "mirostat": CutBy.MIROSTAT,
    "greedy": CutBy.GREEDY,
}
"""What a token removed at each stage is shown as."""
SELECTORS = frozenset({"dist", "greedy", "mirostat"})
"""Stages that pick the token (always last)."""
_REPLAYED = frozenset({"penalties", "dry", "grammar"})
_COMPACTED = frozenset({"logit_bias", "grammar", "top_n_sigma"})
"""Stages that mark removed tokens -inf instead of shrinking the array: the engine drops them."""


class GrammarError(EngineError):
    """A GBNF grammar llama.cpp cannot parse, or a JSON schema that cannot be turned into one."""

    def __str__(self) -> str:
        end = "" if self.message.endswith(".") else "."
        return f"{self.message}{end} {self.hint}".strip()


DEAD_END = "The grammar allows no token"
"""How the stop reason of a reply the grammar could not continue starts (see is_dead_end)."""


class GrammarDeadEnd(EngineError):
    """The grammar allows no token at this step (or the reply so far does not match it)."""


def is_dead_end(message: str | None) -> bool:
    """Whether an error stop reason says the grammar (or a ban) left no token to continue with."""
    return bool(message) and (
        str(message).startswith((DEAD_END, "The logit bias bans every token", _NO_MATCH))
    )


_NO_MATCH = "The reply so far does not match the new grammar"


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage of the chain: its name and everything its llama.cpp object is built from."""

    name: str
    key: tuple[Any, ...]

    def seeded(self) -> bool:
        """Stages with a random generator (seeded from the reply's seed)."""
        return self.name in ("xtc", "mirostat", "dist")


def grammar_text(params: SamplingParams) -> str:
    """The GBNF the params ask for: the grammar itself, or the JSON schema converted (or "")."""
    if params.grammar.strip():
        return params.grammar
    if params.json_schema.strip():
        return schema_to_gbnf(params.json_schema)
    return ""


def schema_to_gbnf(schema: str) -> str:
    """A JSON schema as GBNF, with llama-cpp-python's converter (GrammarError if it can't)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return str(json_schema_to_gbnf(schema))
    except Exception as exc:  # the converter raises many kinds (KeyError, ValueError, ...)
        detail = str(exc) or type(exc).__name__
        raise GrammarError(
            f"The JSON schema cannot be turned into a grammar: {detail}",
            "Simplify the schema (e.g. drop remote $refs or unusual keywords).",
        ) from None


def chain_specs(params: SamplingParams, *, seed: int, n_ctx: int) -> list[StageSpec]:
    """The stages for ``params``, constraints first, the selector last (inactive ones left out)."""
    specs: list[StageSpec] = []
    if params.logit_bias:
        specs.append(StageSpec("logit_bias", (tuple(sorted(params.logit_bias.items())),)))
    grammar = grammar_text(params)
    if grammar:
        specs.append(StageSpec("grammar", (grammar,)))
    order = params.samplers
    if params.is_greedy:
        for name in order:
            spec = _ordered_spec(params, name, seed, n_ctx)
            if spec is not None and name in (SamplerName.PENALTIES, SamplerName.DRY):
                specs.append(spec)
        specs.append(StageSpec("greedy", ()))
        return specs
    if params.mirostat is not Mirostat.OFF:
        specs.append(StageSpec("temperature", (params.temperature, 0.0, 1.0)))
        tau_eta = (params.mirostat_tau, params.mirostat_eta)
        specs.append(StageSpec("mirostat", (int(params.mirostat), *tau_eta, seed)))
        return specs
    for name in order:
        spec = _ordered_spec(params, name, seed, n_ctx)
        if spec is not None:
            specs.append(spec)
    specs.append(StageSpec("dist", (seed,)))
    return specs


def _ordered_spec(params: SamplingParams, name: SamplerName, seed: int, n_ctx: int) -> StageSpec | None:
    """The stage for one reorderable sampler, or None when it is off."""
    p = params
    match name:
        case SamplerName.PENALTIES:
            on = p.repeat_last_n != 0 and (
                p.repeat_penalty != 1.0 or p.frequency_penalty != 0.0 or p.presence_penalty != 0.0
            )
            penalties = (p.repeat_last_n, p.repeat_penalty, p.frequency_penalty, p.presence_penalty)
            return StageSpec("penalties", penalties) if on else None
        case SamplerName.DRY:
            last_n = n_ctx if p.dry_last_n == -1 else p.dry_last_n
            on = p.dry_multiplier > 0.0 and last_n > 0
            key = (p.dry_multiplier, p.dry_base, p.dry_allowed_length, last_n, p.dry_sequence_breakers)
            return StageSpec("dry", key) if on else None
        case SamplerName.TOP_N_SIGMA:
            return StageSpec("top_n_sigma", (p.top_n_sigma,)) if p.top_n_sigma > 0.0 else None
        case SamplerName.TOP_K:
            return StageSpec("top_k", (p.top_k,)) if p.top_k > 0 else None
        case SamplerName.TYP_P:
            return StageSpec("typ_p", (p.typical_p,)) if p.typical_p < 1.0 else None
        case SamplerName.TOP_P:
            return StageSpec("top_p", (p.top_p,)) if p.top_p < 1.0 else None
        case SamplerName.MIN_P:
            return StageSpec("min_p", (p.min_p,)) if p.min_p > 0.0 else None
        case SamplerName.XTC:
            on = p.xtc_probability > 0.0 and p.xtc_threshold <= 0.5
            return StageSpec("xtc", (p.xtc_probability, p.xtc_threshold, seed)) if on else None
        case SamplerName.TEMPERATURE:
            return StageSpec("temperature", (p.temperature, p.dynatemp_range, p.dynatemp_exponent))
    raise AssertionError(name)  # pragma: no cover


_PARSE_PREFIX = "error parsing grammar: "


def _line_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f" (line {line}, column {column})"


def grammar_error_message(log: str, grammar: str) -> str:
    """llama.cpp's grammar parser error (captured from its stderr), with a line and column.

    The parser prints ``parse: error parsing grammar: WHAT\n\nGRAMMAR\n``, where WHAT often ends
    with ``at REST`` (the text left when it failed): REST's place in the grammar gives the line
    and column.
    """
    at = log.find(_PARSE_PREFIX)
    if at < 0:
        if not re.search(r"^\s*root\s*::=", grammar, re.M):
            return "grammar error: it has no 'root' rule (the reply must match root)"
        return "llama.cpp could not parse the grammar"
    what = log[at + len(_PARSE_PREFIX) :]
    tail = "\n\n" + grammar + "\n"
    end = what.rfind(tail)
    what = what[:end] if end >= 0 else what.split("\n\n", 1)[0]
    where = ""
    marker = what.find(" at ")
    while marker >= 0:
        rest = what[marker + 4 :]
        if grammar.endswith(rest):
            offset = len(grammar) - len(rest)
            if not grammar[offset:].strip():  # at the end: point just after the last text
                offset = len(grammar.rstrip())
            where = _line_column(grammar, offset)
            what = what[:marker]
            break
        marker = what.find(" at ", marker + 1)
    if not where and what.startswith("unexpected end of input"):
        where = _line_column(grammar, len(grammar.rstrip()))
    undefined = re.match(r"Undefined rule identifier '(.+)'", what)
    if not where and undefined:
        found = re.search(r"(?<![\w-])" + re.escape(undefined.group(1)) + r"(?![\w-])", grammar)
        if found:
            where = _line_column(grammar, found.start())
    what = what.strip()
    if len(what) > 120:
        what = what[:117] + "..."
    return f"grammar error{where}: {what}"


def _c_stderr() -> Any:
    """The C library's ``stderr`` (a ``FILE *`` variable), or None where it can't be reached."""
    global _C_STDERR
    if _C_STDERR is None:
        try:
            libc = ctypes.CDLL(None)
            libc.tmpfile.restype = ctypes.c_void_p
            for name in ("fileno", "fflush", "fclose"):
                getattr(libc, name).argtypes = [ctypes.c_void_p]
            _C_STDERR = (libc, ctypes.c_void_p.in_dll(libc, "stderr"))
        except (OSError, ValueError, AttributeError):  # not glibc-like (macOS: __stderrp)
            _C_STDERR = False
    return _C_STDERR or None


_C_STDERR: Any = None
_STDERR_LOCK = threading.Lock()


def _capture_stderr(call: Any) -> tuple[Any, str]:
    """Run ``call()`` catching what llama.cpp writes to C's ``stderr``; (result, what it wrote).

    The C ``FILE *stderr`` is swapped for a temporary file, so the process's file descriptor 2
    (where Textual draws the screen) is never touched; where that is not possible, fd 2 itself
    is redirected for the call.
    """
    found = _c_stderr()
    with _STDERR_LOCK:
        if found is None:
            return _capture_fd2(call)
        libc, stderr = found
        tmp = libc.tmpfile()
        if not tmp:
            return _capture_fd2(call)
        saved = stderr.value
        libc.fflush(saved)
        stderr.value = tmp
        try:
            result = call()
        finally:
            libc.fflush(tmp)
            stderr.value = saved
        fd = libc.fileno(tmp)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        libc.fclose(tmp)
        return result, b"".join(chunks).decode("utf-8", errors="replace")


def _capture_fd2(call: Any) -> tuple[Any, str]:
    """Run ``call()`` with file descriptor 2 sent to a temporary file; (result, what it wrote)."""
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            result = call()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read().decode("utf-8", errors="replace")


def parse_grammar(lib: Any, vocab: Any, grammar: str) -> Any:
    """A llama.cpp grammar sampler for ``grammar`` (GrammarError with line/column if it won't parse)."""
    data = grammar.encode("utf-8")
    ptr, log = _capture_stderr(lambda: lib.llama_sampler_init_grammar(vocab, data, b"root"))
    if not ptr:
        raise GrammarError(grammar_error_message(log, grammar), "Fix the grammar (panel: Constraints).")
    return ptr


def params_problem(lib: Any, vocab: Any, n_vocab: int, params: SamplingParams) -> tuple[str, str] | None:
    """What this model can't use in ``params``, as (field, message): a bias for a token outside
    the vocabulary, a grammar llama.cpp can't parse (line and column), a JSON schema the
    converter can't handle. None when the chain can be built."""
    problem = bias_problem(params, n_vocab)
    if problem:
        return "logit_bias", problem
    field_name = "grammar" if params.grammar.strip() else "json_schema"
    try:
        text = grammar_text(params)
        if text:
            lib.llama_sampler_free(parse_grammar(lib, vocab, text))
    except GrammarError as exc:
        return field_name, exc.message
    return None


@dataclass
class _Stage:
    spec: StageSpec
    ptr: Any


@dataclass
class ChainStep:
    """What one run of the chain did (only filled for the watched tokens)."""

    token: int
    p: float
    """Probability the final distribution gave the chosen token."""
    cut_by: list[CutBy | None] = field(default_factory=list)
    """Per watched token: the stage that removed it (None = it survived everything)."""
    p_final: list[float] = field(default_factory=list)
    """Per watched token: its probability after the whole chain (0 when cut)."""
    survivors: tuple[tuple[str, int], ...] = ()
    """(stage, how many tokens it left), in chain order."""


class SamplerChain:
    """The stage objects for one reply, rebuilt stage by stage as the parameters change."""

    def __init__(self, lib: Any, vocab: Any, n_vocab: int, n_ctx: int) -> None:
        self._lib = lib
        self._vocab = vocab
        self.n_vocab = n_vocab
        self.n_ctx = n_ctx
        self._stages: list[_Stage] = []
        self._rebuilds = 0
        self._data = (lib.llama_token_data * n_vocab)()
        self._view = np.ctypeslib.as_array(self._data)
        self._base = ctypes.addressof(self._data)
        self._item = ctypes.sizeof(lib.llama_token_data)
        self._all_ids = np.arange(n_vocab, dtype=np.int32)
        self._mark = np.zeros(n_vocab, dtype=bool)
        self._p_of = np.zeros(n_vocab, dtype=np.float32)
        self._one = (lib.llama_token_data * 1)()

    @property
    def specs(self) -> list[StageSpec]:
        """The stages in use, in order."""
        return [stage.spec for stage in self._stages]

    def close(self) -> None:
        """Free every stage object."""
        for stage in self._stages:
            self._lib.llama_sampler_free(stage.ptr)
        self._stages = []

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the library may be gone already
            self.close()

    # -- building ---------------------------------------------------------------------------
    def update(self, specs: Sequence[StageSpec], history: Sequence[int]) -> None:
        """Use ``specs``: keep the stage objects whose spec is unchanged, build the others.

        A new penalties, DRY or grammar stage replays ``history`` (the reply so far). Raises
        GrammarError (bad grammar) or GrammarDeadEnd (the reply so far doesn't fit it); then the
        chain is left as it was.
        """
        if [s.spec for s in self._stages] == list(specs):
            return
        old = {id(stage): stage for stage in self._stages}
        pool = list(self._stages)
        built: list[_Stage] = []
        fresh: list[_Stage] = []
        try:
            for spec in specs:
                reuse = next((s for s in pool if s.spec == spec), None)
                if reuse is not None:
                    pool.remove(reuse)
                    built.append(reuse)
                    continue
                stage = _Stage(spec, self._create(spec))
                fresh.append(stage)
                built.append(stage)
                if spec.name in _REPLAYED:
                    self._replay(stage, history)
        except EngineError:
            for stage in fresh:
                self._lib.llama_sampler_free(stage.ptr)
            raise
        if fresh and any(s.spec.seeded() for s in fresh):
            self._rebuilds += 1
        for stage in pool:  # no longer used
            if id(stage) in old:
                self._lib.llama_sampler_free(stage.ptr)
        self._stages = built

    def _seed(self, seed: int) -> int:
        return (seed + self._rebuilds * SEED_STEP) % SEED_MOD

    def _create(self, spec: StageSpec) -> Any:
        lib, key = self._lib, spec.key
        match spec.name:
            case "logit_bias":
                entries = key[0]
                problem = bias_problem(SamplingParams(logit_bias=dict(entries)), self.n_vocab)
                if problem:
                    raise EngineError(problem[0].upper() + problem[1:] + ".", "Remove it from logit_bias.")
                array = (lib.llama_logit_bias * len(entries))()
                for i, (token, bias) in enumerate(entries):
                    array[i].token = token
                    array[i].bias = bias
                return lib.llama_sampler_init_logit_bias(self.n_vocab, len(entries), array)
            case "grammar":
                return parse_grammar(lib, self._vocab, key[0])
            case "penalties":
                last_n, repeat, freq, present = key
                return lib.llama_sampler_init_penalties(self.n_vocab, last_n, repeat, freq, present)
            case "dry":
                mult, base, allowed, last_n, breakers = key
                encoded = [b.encode("utf-8") for b in breakers]
                ptrs = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
                return lib.llama_sampler_init_dry(
                    self._vocab, mult, base, allowed, last_n, ptrs, len(encoded)
                )
            case "top_n_sigma":
                return lib.llama_sampler_init_top_n_sigma(key[0])
            case "top_k":
                return lib.llama_sampler_init_top_k(key[0])
            case "typ_p":
                return lib.llama_sampler_init_typical(key[0], 1)
            case "top_p":
                return lib.llama_sampler_init_top_p(key[0], 1)
            case "min_p":
                return lib.llama_sampler_init_min_p(key[0], 1)
            case "xtc":
                prob, threshold, seed = key
                return lib.llama_sampler_init_xtc(prob, threshold, 1, self._seed(seed))
            case "temperature":
                temp, delta, exponent = key
                if delta > 0.0:
                    return lib.llama_sampler_init_temp_ext(temp, delta, exponent)
                return lib.llama_sampler_init_temp(temp)
            case "mirostat":
                version, tau, eta, seed = key
                if version == 1:
                    return lib.llama_sampler_init_mirostat(
                        self.n_vocab, self._seed(seed), tau, eta, MIROSTAT_M
                    )
                return lib.llama_sampler_init_mirostat_v2(self._seed(seed), tau, eta)
            case "greedy":
                return lib.llama_sampler_init_greedy()
            case "dist":
                return lib.llama_sampler_init_dist(self._seed(key[0]))
        raise AssertionError(spec.name)  # pragma: no cover

    def _replay(self, stage: _Stage, history: Sequence[int]) -> None:
        tokens = list(history)
        if stage.spec.name == "penalties":
            tokens = tokens[-stage.spec.key[0] :] if stage.spec.key[0] > 0 else tokens
        for token in tokens:
            if stage.spec.name == "grammar" and not self.grammar_allows(stage.ptr, token):
                raise GrammarDeadEnd(
                    f"{_NO_MATCH} (token {token} is not allowed there): the reply ends here; the "
                    "grammar applies to the next reply."
                )
            self._lib.llama_sampler_accept(stage.ptr, token)

    def grammar_allows(self, ptr: Any, token: int) -> bool:
        """Whether grammar stage ``ptr`` allows ``token`` next (never accept one it doesn't)."""
        one = self._one
        one[0].id, one[0].logit, one[0].p = token, 0.0, 0.0
        array = self._lib.llama_token_data_array(one, 1, -1, False)
        self._lib.llama_sampler_apply(ptr, ctypes.byref(array))
        return bool(math.isfinite(one[0].logit))

    def check_continuation(self, token: int) -> None:
        """Raise GrammarDeadEnd if the grammar stage would not allow ``token`` (a fixed token)."""
        for stage in self._stages:
            if stage.spec.name == "grammar" and not self.grammar_allows(stage.ptr, token):
                raise GrammarDeadEnd(f"{DEAD_END} here: not token {token}, where the reply continues.")

    def accept(self, token: int) -> None:
        """Tell every stage the token that was chosen (penalty/DRY history, grammar, mirostat)."""
        for stage in self._stages:
            self._lib.llama_sampler_accept(stage.ptr, token)

    # -- running ------------------------------------------------------------------------------
    def pool_allowed(self) -> bool:
        """Whether a top-k pool may stand in for the vocabulary: nothing before top-k but the
        repeat penalties (which the pool accounts for)."""
        for stage in self._stages:
            if stage.spec.name == "top_k":
                return True
            if stage.spec.name != "penalties":
                return False
        return False

    def run(self, logits: np.ndarray, pool: np.ndarray | None, watched: np.ndarray | None) -> ChainStep:
        """Apply every stage to ``logits`` (or just the ``pool`` ids) and pick a token.

        ``watched``: token ids whose fate to report (None = report nothing, just draw). Raises
        GrammarDeadEnd when the constraints leave no token.
        """
        lib = self._lib
        view = self._view
        if pool is None:
            size = self.n_vocab
            view["id"] = self._all_ids
            view["logit"] = logits
        else:
            size = int(pool.shape[0])
            part = view[:size]
            part["id"] = pool
            part["logit"] = logits[pool]
        array = lib.llama_token_data_array(self._data, size, -1, False)
        ref = ctypes.byref(array)
        n_watch = 0 if watched is None else int(watched.shape[0])
        cut: list[CutBy | None] = [None] * n_watch
        alive = np.ones(n_watch, dtype=bool)
        survivors: list[tuple[str, int]] = []
        before_top_k = pool is not None
        for stage in self._stages:
            name = stage.spec.name
            before = int(array.size)
            lib.llama_sampler_apply(stage.ptr, ref)
            if name == "top_k":
                before_top_k = False
            if name in _COMPACTED:
                current = self._current(array)
                finite = current["logit"] > -np.inf
                kept = int(np.count_nonzero(finite))
                if kept == 0 and name != "top_n_sigma":
                    raise GrammarDeadEnd(self._dead_end(name))
                if 0 < kept < current.shape[0]:
                    # Drop the -inf entries: later samplers (typical-p, mirostat, the draw) need
                    # finite logits (llama.cpp's typical-p computes NaN with them).
                    compact = current[finite].copy()
                    start = self._offset(array)
                    view[start : start + kept] = compact
                    array.size = kept
                    array.sorted = False
            if watched is None or name == "dist":
                continue
            size_now = int(array.size)
            survivors.append((name, 1 if name == "greedy" else self.n_vocab if before_top_k else size_now))
            if name == "greedy" or not alive.any() or size_now == before:
                continue
            current = self._current(array)
            mark = self._mark
            ids = current["id"]
            mark[ids] = True
            still = mark[watched]
            mark[ids] = False
            newly = alive & ~still
            if newly.any():
                reason = STAGE_CUTS.get(name)
                for i in np.flatnonzero(newly).tolist():
                    cut[i] = reason
                alive &= still
        selected = int(array.selected)
        if not 0 <= selected < array.size:
            raise EngineError("the sampler chain selected no token")
        current = self._current(array)
        token = int(current["id"][selected])
        p = float(current["p"][selected])
        p_final: list[float] = []
        if watched is not None:
            last = self._stages[-1].spec.name
            if last == "greedy":
                p = 1.0
                p_final = [1.0 if int(t) == token else 0.0 for t in watched.tolist()]
                ids_list = watched.tolist()
                cut = [
                    c if c is not None or t == token else CutBy.GREEDY
                    for c, t in zip(cut, ids_list, strict=True)
                ]
            else:
                p_of = self._p_of
                p_of[current["id"]] = current["p"]
                got = p_of[watched].tolist()
                p_final = [float(v) if a else 0.0 for v, a in zip(got, alive.tolist(), strict=True)]
                p_of[current["id"]] = 0.0
        return ChainStep(token, p, cut, p_final, tuple(survivors))

    def _dead_end(self, stage: str) -> str:
        """The stop reason when a constraint stage left no token."""
        if stage != "grammar":
            return "The logit bias bans every token: the reply ends here."
        banned = any(s.spec.name == "logit_bias" for s in self._stages)
        because = " (or the logit bias bans every token it allows)" if banned else ""
        return (
            f"{DEAD_END} at this point of the reply{because}: the reply ends here. "
            "Check the grammar (panel: Constraints)."
        )

    def _offset(self, array: Any) -> int:
        address = ctypes.cast(array.data, ctypes.c_void_p).value or self._base
        return (address - self._base) // self._item

    def _current(self, array: Any) -> np.ndarray:
        start = self._offset(array)
        return self._view[start : start + int(array.size)]
