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

from settings.sampling import SamplingParams
from tui.engine.events import Candidate, CutBy, TokenEvent
from tui.engine.sampling_math import TOP_P_TOLERANCE, FilterResult, apply_samplers


@dataclass(frozen=True, slots=True)
class WhatIfParams:
    """The sampler settings a what-if runs with (penalties are not re-applied)."""

    temperature: float
    top_k: int
    top_p: float
    min_p: float
    greedy: bool = False

    @classmethod
    def of(cls, params: SamplingParams) -> WhatIfParams:
        """The what-if settings equal to ``params``."""
        return cls(params.temperature, params.top_k, params.top_p, params.min_p, params.is_greedy)

    @property
    def is_greedy(self) -> bool:
        """True when only the arg-max survives (greedy, or temperature 0)."""
        return self.greedy or self.temperature <= 0.0


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
    """What-if only: whether top-p cuts it depends on probability mass beyond the top N (shown
    kept, as the upper bound of that mass keeps it; the lower bound would cut it)."""


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
        return len(self.rows)

    @property
    def draw_entropy_bits(self) -> float:
        """Entropy, in bits, of the distribution the draw uses (over the survivors)."""
        return -sum(r.p_final * math.log2(r.p_final) for r in self.rows if r.p_final > 0.0)

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


def _rows(
    ordered: Sequence[Candidate],
    log_norm: float,
    p_final: Sequence[float],
    cut_by: Sequence[CutBy | None],
    chosen_id: int | None,
    uncertain: Sequence[bool] = (),
) -> tuple[CandidateRow, ...]:
    rows: list[CandidateRow] = []
    cumulative = 0.0
    for rank, (cand, p, cut) in enumerate(zip(ordered, p_final, cut_by, strict=True)):
        p_raw = math.exp(cand.logit - log_norm)
        cumulative += p_raw
        chosen = cand.token_id == chosen_id
        unsure = bool(uncertain[rank]) if uncertain else False
        rows.append(
            CandidateRow(
                rank, cand.token_id, cand.text, cand.logit, p_raw, cumulative, p, cut, chosen, unsure
            ),
        )
    return tuple(rows)


def actual_step(event: TokenEvent, params: SamplingParams | None) -> StepWhatIf:
    """The step as it happened: the engine's own p_final and cut_by (exact, penalties included)."""
    ordered = _sorted(event.candidates)
    if not ordered:
        raise ValueError("this token has no stored candidates")
    log_norm = log_normalizer_of(ordered)
    rows = _rows(ordered, log_norm, [c.p_final for c in ordered], [c.cut_by for c in ordered], event.token_id)
    whatif = WhatIfParams.of(params) if params is not None else WhatIfParams(1.0, 0, 1.0, 0.0)
    kept = sum(1 for r in rows if r.cut_by is None)
    return StepWhatIf(rows, whatif, log_norm, rows[-1].cum_raw, kept, True)


def what_if(candidates: Sequence[Candidate], params: WhatIfParams, chosen_id: int | None) -> StepWhatIf:
    """Re-run top-k -> top-p -> min-p -> temperature on the stored candidates of one step.

    Penalties are not re-applied (the stored logits are the raw ones). See the module
    docstring for when the result is exact.
    """
    ordered = _sorted(candidates)
    if not ordered:
        raise ValueError("this token has no stored candidates")
    n = len(ordered)
    log_norm = log_normalizer_of(ordered)
    logits = np.array([c.logit for c in ordered], dtype=np.float64)
    coverage = float(np.exp(logits - log_norm).sum())

    def run(normalizer: float) -> FilterResult:
        return apply_samplers(
            logits,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            temperature=params.temperature,
            greedy=params.is_greedy,
            log_normalizer=normalizer,
        )

    uncertain: list[bool] = []
    if params.is_greedy:
        result = run(log_norm)
        exact = True
    elif params.top_k > n and params.top_p < 1.0:
        # top-p sees probabilities renormalised over the top-k survivors, whose mass is only
        # known to lie between the top N's and that plus (k - N) more tokens no likelier than
        # the N-th: the cut is exact only if both ends agree. Shown: the upper end, which never
        # shows a token cut that is really kept; rows where the ends disagree are marked.
        upper = min(1.0, coverage + (params.top_k - n) * math.exp(logits[-1] - log_norm))
        result = run(log_norm + math.log(upper))
        lower = run(log_norm + math.log(coverage))
        uncertain = (result.cut_code != lower.cut_code).tolist()
        exact = not any(uncertain) and result.kept < n
    else:
        result = run(log_norm)
        reached = coverage >= params.top_p - TOP_P_TOLERANCE
        top_p_reached = params.top_k <= 0 and params.top_p < 1.0 and reached
        exact = 0 < params.top_k <= n or result.kept < n or top_p_reached
    rows = _rows(ordered, log_norm, result.p_final.tolist(), result.cut_by, chosen_id, uncertain)
    return StepWhatIf(rows, params, log_norm, coverage, result.kept, exact)


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
