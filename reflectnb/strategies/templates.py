"""Prompt templates that users can replace, checked before any model runs.

Each strategy declares its templates as :class:`TemplateSpec` values: the
default text, the placeholders a replacement *must* contain, and those it
*may* contain. :func:`resolve_templates` merges the user's dict over the
defaults and raises :class:`~reflectnb.errors.OptionError` naming the template
and the placeholder when one is missing or unknown. Placeholders use
``str.format`` syntax (``{task}``); double the braces for literal ones
(``{{"key": "value"}}``).

Non-goals: a templating language (no loops, no conditionals).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Mapping

from reflectnb.errors import OptionError


@dataclass(frozen=True)
class TemplateSpec:
    """A default template and the placeholders a replacement must / may use."""

    default: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.required + self.optional


def placeholders(name: str, text: str) -> set[str]:
    """The ``{names}`` used by a template (``{{`` and ``}}`` are literal braces).

    Examples
    --------
    >>> sorted(placeholders("t", "Fix {draft} for {task}; JSON is {{...}}"))
    ['draft', 'task']
    """
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise OptionError(f"template {name!r} is not a valid template ({exc}); write {{{{ and }}}} "
                          "for literal braces") from None
    names = {f.split(".")[0].split("[")[0] for f in fields}
    if "" in names:
        raise OptionError(f"template {name!r} has an empty placeholder {{}}; name it (e.g. {{task}}) "
                          "or write {{{{}}}} for literal braces")
    return names


def check_template(strategy: str, name: str, text: Any, spec: TemplateSpec) -> str:
    """Validate one template against its spec; return it unchanged."""
    if not isinstance(text, str):
        raise OptionError(f"template {name!r} for {strategy} must be a str, got {type(text).__name__}")
    used = placeholders(name, text)
    missing = [p for p in spec.required if p not in used]
    if missing:
        raise OptionError(f"template {name!r} for {strategy} must contain the placeholder {{{missing[0]}}}"
                          f" (required: {_braced(spec.required)})")
    unknown = sorted(used - set(spec.allowed))
    if unknown:
        raise OptionError(f"template {name!r} for {strategy} uses {{{unknown[0]}}}, which {strategy} does "
                          f"not fill; available: {_braced(spec.allowed)}; write {{{{ and }}}} for literal braces")
    return text


def resolve_templates(strategy: str, specs: Mapping[str, TemplateSpec], given: Mapping[str, Any] | None,
                      settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults overlaid with ``given``; ``settings`` are non-template keys with their defaults.

    Examples
    --------
    >>> specs = {"draft": TemplateSpec("{task}", required=("task",))}
    >>> resolve_templates("reflect", specs, {"draft": "Answer briefly: {task}"})["draft"]
    'Answer briefly: {task}'
    """
    if given is not None and not isinstance(given, Mapping):
        raise OptionError(f"templates for {strategy} must be a dict of template name -> text, e.g. "
                          f"{{{next(iter(specs), 'draft')!r}: '...'}}; got {type(given).__name__}")
    given = dict(given or {})
    settings = dict(settings or {})
    unknown = sorted(set(given) - set(specs) - set(settings), key=repr)  # keys may not be str
    if unknown:
        raise OptionError(f"unknown template {unknown[0]!r} for {strategy}; known: "
                          f"{sorted([*specs, *settings])}")
    out: dict[str, Any] = {k: given.get(k, v) for k, v in settings.items()}
    for name, spec in specs.items():
        out[name] = check_template(strategy, name, given.get(name, spec.default), spec)
    return out


def render(template: str, **values: Any) -> str:
    """Fill a checked template (extra values are ignored)."""
    return template.format(**values)


def _braced(names: tuple[str, ...]) -> str:
    return ", ".join(f"{{{n}}}" for n in names) or "none"
