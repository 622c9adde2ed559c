"""What-if for one generation step: re-run the samplers on the stored top-N candidates.

Pure functions, no Textual. A TokenEvent keeps only the top-N candidates with their raw logits
and raw probabilities, so the log-normaliser of the whole vocabulary at temperature 1 is known
exactly (``logit - log(p_raw)``) and every temperature-1 number is exact. What the samplers keep
is exact when every survivor lies within the top N; otherwise the survivors go on beyond the
candidates and their probabilities can only be renormalised *within the top N*, which
:attr:`StepWhatIf.exact` says. The filtering itself is ``sampling_math.apply_samplers``, the same
code the engine uses to report what each sampler cut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from settings.sampling import SamplerName, SamplingParams
from tui.engine.events import Candidate, CutBy, TokenEvent
from tui.engine.sampling_math import TOP_P_TOLERANCE, FilterResult, apply_samplers


@dataclass(frozen=True, slots=True)
class WhatIfParams:
    """The sampler settings a what-if runs with."""

    temperature: float
    top_k: int
    top_p: float
    min_p: float
    greedy: bool = False
    repeat_penalty: float = 1.0
    """Applied to the token ids passed as ``penalized`` (greedy mode ignores it, like the engine)."""
    unknown: tuple[str, ...] = ()
    """Samplers in force that the stored top N cannot recompute (typical-p needs the whole
    vocabulary's entropy, XTC and mirostat are random or stateful, DRY and frequency penalties
    need the history's counts, a ban or grammar moves mass we can't see): the what-if leaves them
    out and says so rather than guessing."""

    @classmethod
    def of(cls, params: SamplingParams) -> WhatIfParams:
        """The what-if settings equal to ``params``."""
        return cls(
            params.temperature, params.top_k, params.top_p, params.min_p, params.is_greedy,
            params.repeat_penalty if params.repeat_last_n > 0 else 1.0, unknown_samplers(params),
        )  # fmt: skip

    @property
    def is_greedy(self) -> bool:
        """True when only the arg-max survives (greedy, or temperature 0)."""
        return self.greedy or self.temperature <= 0.0


def unknown_samplers(params: SamplingParams) -> tuple[str, ...]:
    """The samplers on in ``params`` that a what-if on the stored top N cannot recompute."""
    p = params
    sampling = not p.is_greedy
    names: list[str] = []
    if sampling and p.mirostat:
        names.append("mirostat")
    if sampling and not p.mirostat:
        names += [name for name, on in (
            ("typical-p", p.typical_p < 1.0), ("top-n-sigma", p.top_n_sigma > 0.0),
            ("XTC", p.xtc_probability > 0.0), ("dynamic temperature", p.dynatemp_range > 0.0),
        ) if on]  # fmt: skip
    if p.repeat_last_n != 0 and (p.presence_penalty or p.frequency_penalty):
        names.append("presence/frequency penalty")
    if p.dry_multiplier > 0.0:
        names.append("DRY")
    if p.logit_bias:
        names.append("logit bias")
    if p.has_constraint:
        names.append("grammar")
    if sampling and not p.mirostat and _reordered(p):
        names.append("sampler order")
    return tuple(names)


def _reordered(params: SamplingParams) -> bool:
    """Whether the order of penalties, top-k, top-p, min-p and temperature differs from the
    what-if's own (penalties -> top-k -> top-p -> min-p -> temperature) among those that are on."""
    classic = [SamplerName.PENALTIES, SamplerName.TOP_K, SamplerName.TOP_P, SamplerName.MIN_P,
               SamplerName.TEMPERATURE]  # fmt: skip
    used = [s for s in params.samplers if s in classic]
    on = {
        SamplerName.PENALTIES: params.repeat_penalty != 1.0 and params.repeat_last_n != 0,
        SamplerName.TOP_K: params.top_k > 0,
        SamplerName.TOP_P: params.top_p < 1.0,
        SamplerName.MIN_P: params.min_p > 0.0,
        SamplerName.TEMPERATURE: True,
    }
    missing = [s for s in classic if on[s] and s not in used]
    active = [s for s in used if on[s]]
    return bool(missing) or active != [s for s in classic if on[s]]


@dataclass(frozen=True, slots=True)
class CandidateRow:
    """One candidate of a step as the inspector shows it."""

    rank: int
    """0 = most likely at temperature 1."""
    token_id: int
    text: str
    logit: float
    p_raw: float
    """Probability at temperature 1 over the whole vocabulary (exact)."""
    cum_raw: float
    """Cumulative temperature-1 probability of this and every more likely candidate (exact)."""
    p_final: float
    """Probability of being drawn after the samplers and the temperature (0 when cut)."""
    cut_by: CutBy | None
    """Which sampler cut it (None = survived)."""
    chosen: bool
    """The token actually generated at this step."""
    uncertain: bool = False
    """What-if only: whether it survives, or which sampler cuts it, depends on tokens past the
    top N (a token shown kept is kept under the most generous reading)."""
    penalized: bool = False
    """The repeat penalty lowered its logit at this step (it is in the reply's recent tokens)."""
    outside: bool = False
    """The chosen token, not among the stored top N: its rank and cumulative are unknown."""


@dataclass(frozen=True, slots=True)
class StepWhatIf:
    """A step's candidates under some sampler settings."""

    rows: tuple[CandidateRow, ...]
    params: WhatIfParams
    log_normalizer: float
    """log-sum-exp of the raw logits over the whole vocabulary (so p_raw = exp(logit - this))."""
    coverage: float
    """Temperature-1 probability mass of the top-N candidates together."""
    kept: int
    """How many of the candidates survive the samplers."""
    exact: bool
    """True when the survivors all lie within the top N (so every p_final is exact);
    False: the survivors go on past the candidates and p_final is renormalised within the top N."""

    @property
    def n(self) -> int:
        """How many candidates the step stored (the N of "top N")."""
        return sum(1 for r in self.rows if not r.outside)

    @property
    def draw_entropy_bits(self) -> float:
        """Entropy, in bits, of the distribution the draw uses (over the survivors)."""
        return -sum(r.p_final * math.log2(r.p_final) for r in self.rows if r.p_final > 0.0)

    @property
    def top(self) -> tuple[CandidateRow, ...]:
        """The stored top-N rows (without a chosen token from outside them)."""
        return tuple(r for r in self.rows if not r.outside)

    @property
    def chosen(self) -> CandidateRow | None:
        """The row of the token actually generated (None if it was not among the candidates)."""
        return next((r for r in self.rows if r.chosen), None)

    def survivors(self) -> tuple[int, ...]:
        """Token ids that survive, most likely first."""
        return tuple(r.token_id for r in self.rows if r.cut_by is None)


def log_normalizer_of(candidates: Sequence[Candidate]) -> float:
    """log-sum-exp of the whole vocabulary's raw logits, recovered from the most likely candidate."""
    best = max(candidates, key=lambda c: c.p_raw)
    return best.logit - math.log(best.p_raw)


def _sorted(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates from the highest logit to the lowest (ties: lower token id first), like the engine."""
    return sorted(candidates, key=lambda c: (-c.logit, c.token_id))


def outside_candidate(event: TokenEvent) -> Candidate | None:
    """The chosen token as a Candidate when it is not among the stored top N (else None).

    Its raw logit is recovered from its temperature-1 probability and the log-normaliser.
    """
    if not event.candidates or any(c.token_id == event.token_id for c in event.candidates):
        return None
    if not event.p_raw > 0.0:
        return None
    logit = math.log(event.p_raw) + log_normalizer_of(event.candidates)
    return Candidate(event.token_id, event.piece, logit, event.p_raw, event.p_final, None)


def repeat_penalty_ids(history: Sequence[int], repeat_last_n: int) -> frozenset[int]:
    """The token ids the repeat penalty applies to, given the reply's tokens before this step
    (the engine's penalty history is the reply, not the prompt)."""
    if repeat_last_n <= 0:
        return frozenset()
    return frozenset(history[-repeat_last_n:])


def _rows(
    ordered: Sequence[Candidate],
    log_norm: float,
    p_final: Sequence[float],
    cut_by: Sequence[CutBy | None],
    chosen_id: int | None,
    *,
    uncertain: Sequence[bool] = (),
    penalized: frozenset[int] = frozenset(),
    outside: Candidate | None = None,
) -> tuple[CandidateRow, ...]:
    """Rows for ``ordered`` (and ``outside`` last: its rank and cumulative are unknown)."""
    rows: list[CandidateRow] = []
    cumulative = 0.0
    entries = [*ordered, *([outside] if outside is not None else [])]
    for rank, (cand, p, cut) in enumerate(zip(entries, p_final, cut_by, strict=True)):
        p_raw = math.exp(cand.logit - log_norm)
        is_outside = cand is outside
        cumulative = math.nan if is_outside else cumulative + p_raw
        rows.append(
            CandidateRow(
                rank, cand.token_id, cand.text, cand.logit, p_raw, cumulative, p, cut,
                cand.token_id == chosen_id,
                bool(uncertain[rank]) if uncertain else False,
                cand.token_id in penalized,
                is_outside,
            )
        )  # fmt: skip
    return tuple(rows)


def actual_step(
    event: TokenEvent, params: SamplingParams | None, penalized: frozenset[int] = frozenset()
) -> StepWhatIf:
    """The step as it happened: the engine's own p_final and cut_by (exact, penalties included).

    A chosen token outside the stored top N is added as a last row (it survived: it was drawn).
    """
    ordered = _sorted(event.candidates)
    if not ordered:
        raise ValueError("this token has no stored candidates")
    log_norm = log_normalizer_of(ordered)
    outside = outside_candidate(event)
    finals = [c.p_final for c in ordered] + ([event.p_final] if outside else [])
    cuts = [c.cut_by for c in ordered] + ([None] if outside else [])
    whatif = WhatIfParams.of(params) if params is not None else WhatIfParams(1.0, 0, 1.0, 0.0)
    pen = penalized if whatif.repeat_penalty != 1.0 and not whatif.is_greedy else frozenset()
    rows = _rows(ordered, log_norm, finals, cuts, event.token_id, penalized=pen, outside=outside)
    kept = sum(1 for r in rows if r.cut_by is None and not r.outside)
    coverage = sum(r.p_raw for r in rows if not r.outside)
    return StepWhatIf(rows, whatif, log_norm, coverage, kept, True)


def _penalize(
    logits: NDArray[np.float64], ids: Sequence[int], penalized: frozenset[int], penalty: float
) -> NDArray[np.float64]:
    """llama.cpp's repeat penalty on the entries whose token id is in ``penalized``."""
    out = logits.copy()
    for i, token in enumerate(ids):
        if token in penalized:
            out[i] = out[i] * penalty if out[i] <= 0 else out[i] / penalty
    return out


def what_if(
    candidates: Sequence[Candidate],
    params: WhatIfParams,
    chosen_id: int | None,
    *,
    penalized: frozenset[int] = frozenset(),
    outside: Candidate | None = None,
) -> StepWhatIf:
    """Re-run penalties -> top-k -> top-p -> min-p -> temperature on one step's stored candidates.

    ``penalized``: the token ids the repeat penalty applies to at this step (see
    :func:`repeat_penalty_ids`); ``outside``: the chosen token when it is not among the candidates
    (see :func:`outside_candidate`), judged as ranking just below them. See the module docstring
    for when the result is exact.
    """
    ordered = _sorted(candidates)
    if not ordered:
        raise ValueError("this token has no stored candidates")
    n = len(ordered)
    log_norm = log_normalizer_of(ordered)
    entries = [*ordered, *([outside] if outside is not None else [])]
    ids = [c.token_id for c in entries]
    raw = np.array([c.logit for c in entries], dtype=np.float64)
    penalty = params.repeat_penalty
    pen = penalized if penalty != 1.0 and not params.is_greedy else frozenset()
    logits = _penalize(raw, ids, pen, penalty) if pen else raw
    # Masses relative to the raw vocabulary's (1). The candidates' (and an outside chosen
    # token's) penalised mass is known exactly; penalised tokens past the top N are not, but
    # each is no likelier than the N-th candidate, and a penalty above 1 only lowers them.
    p_n = math.exp(raw[n - 1] - log_norm)
    raw_coverage = float(np.exp(raw[:n] - log_norm).sum())
    top_mass = float(np.exp(logits[:n] - log_norm).sum())
    total_hi = 1.0 + float(np.sum(np.exp(logits - log_norm) - np.exp(raw - log_norm)))
    unknown = len(pen - set(ids))
    total_lo = total_hi - min(unknown * p_n, 1.0 - raw_coverage) if penalty > 1.0 else total_hi
    # Penalised candidates may fall below tokens past the top N (no likelier than the N-th raw);
    # a penalty below 1 may lift unseen tokens above them.
    order_known = not pen or bool(np.all(logits[:n] >= raw[n - 1] - 1e-12))
    order_known = order_known and not (unknown and penalty < 1.0)

    def run(mass: float) -> FilterResult:
        return apply_samplers(
            logits,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            temperature=params.temperature,
            greedy=params.is_greedy,
            log_normalizer=log_norm + math.log(max(mass, 1e-300)),
        )

    if params.is_greedy:
        result = run(total_hi)
        uncertain = [False] * len(entries)
        exact = True
    else:
        # top-p normalises over the top-k survivors (the whole vocabulary without top-k); that
        # mass is only known to lie in [low, high] unless top-k stays within the candidates.
        # Shown: the high end, which never shows a token cut that is really kept; rows where
        # the two ends disagree are marked uncertain.
        if 0 < params.top_k <= n:
            low = high = top_mass  # (apply_samplers renormalises over the top k itself)
        elif params.top_k > n:
            low, high = top_mass, min(total_hi, top_mass + (params.top_k - n) * p_n)
        else:
            low, high = total_lo, total_hi
        result = run(high)
        uncertain = [False] * len(entries)
        survival_known = True
        if params.top_p < 1.0 and low != high:
            lower = run(low)
            # Differing codes: the row's fate or only which sampler cut it is unsure.
            uncertain = (result.cut_code != lower.cut_code).tolist()
            survival_known = bool(np.array_equal(result.cut_code == 0, lower.cut_code == 0))
        reached = params.top_p < 1.0 and top_mass / high >= params.top_p - TOP_P_TOLERANCE
        exact = survival_known and (0 < params.top_k <= n or result.kept < n or reached)
        if unknown and penalty < 1.0:
            # Lifted tokens past the top N may join the survivors: no cut is sure.
            uncertain = [u or code != 0 for u, code in zip(uncertain, result.cut_code.tolist(), strict=True)]
            exact = False
    exact = exact and order_known and not params.unknown
    if outside is not None and not params.is_greedy:
        # Its rank past the top N is unknown: kept by top-k (k > N) or past an unreached top-p
        # only "as far as known"; and if it survives, the survivors go on past the top N.
        kept = result.cut_at(n) is None
        top_p_open = params.top_p < 1.0 and result.kept_after_top_p > n
        uncertain[n] = uncertain[n] or (kept and (params.top_k > n or top_p_open))
        exact = exact and not kept
    rows = _rows(
        ordered, log_norm, result.p_final.tolist(), result.cut_by, chosen_id,
        uncertain=uncertain, penalized=pen, outside=outside,
    )  # fmt: skip
    kept_in_top = sum(1 for r in rows if r.cut_by is None and not r.outside)
    return StepWhatIf(rows, params, log_norm, raw_coverage, kept_in_top, exact)


def confidence_values(events: Sequence[TokenEvent], *, by: str = "p") -> list[float]:
    """Per token: the model's probability for the chosen token at temperature 1 (``by="p"``; the
    samplers do not change it, so it means the same in greedy mode) or the entropy of the step in
    bits (``by="entropy"``); NaN where the engine recorded none."""
    if by == "entropy":
        return [e.entropy for e in events]
    return [e.p_raw for e in events]


def least_confident(events: Sequence[TokenEvent]) -> int | None:
    """Index of the token the model was least sure of (lowest temperature-1 probability; the first
    on ties); None when no token has one."""
    best: int | None = None
    best_p = math.inf
    for i, event in enumerate(events):
        p = event.p_raw
        if not math.isnan(p) and p < best_p:
            best, best_p = i, p
    return best
