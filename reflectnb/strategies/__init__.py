"""Reflection loops: Self-Refine, step-level critique, MAD and Du et al. debate.

Every loop takes a :class:`~reflectnb.strategies.context.RunContext` (or a bare
backend), the task and options, reports each step through the context's
:class:`~reflectnb.trace.Recorder` (never the trace store directly), and
returns a result dataclass with ``to_df()``, ``to_dict()``, ``_repr_html_()``
(model text escaped) and ``run_id`` (filled in by the caller after tracing).
On Ctrl-C a loop records the partial steps, then re-raises with the partial
result on the exception as ``.partial``, the one name every layer uses.

Layer 4: imports errors, trace and ``backends.base`` only (no torch, no store).
"""

from reflectnb.strategies.context import RunContext, StopSignal, as_context
from reflectnb.strategies.critique import CritiqueResult, critique
from reflectnb.strategies.critique_parse import Critique, StepVerdict, parse_critique
from reflectnb.strategies.debate_du import debate_du
from reflectnb.strategies.debate_mad import debate_mad
from reflectnb.strategies.diff import DiffOp, diff_html, diff_ops
from reflectnb.strategies.engine import Turn
from reflectnb.strategies.moderator_json import Verdict, parse_verdict
from reflectnb.strategies.reflect import TONES, ReflectResult, reflect
from reflectnb.strategies.results import DebateResult, LoopResult
from reflectnb.strategies.templates import TemplateSpec
from reflectnb.strategies.voting import extract_answer, majority

__all__ = ["reflect", "critique", "debate_mad", "debate_du", "RunContext", "StopSignal", "as_context",
           "ReflectResult", "CritiqueResult", "DebateResult", "LoopResult", "Critique", "StepVerdict",
           "parse_critique", "Verdict", "parse_verdict", "DiffOp", "diff_ops", "diff_html", "Turn", "TemplateSpec",
           "TONES", "extract_answer", "majority"]
