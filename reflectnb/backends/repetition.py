"""Stop a generation that has fallen into a loop (issue #14 item 5).

At 135M a feedback or refine step often repeats one line ("The answer is 12.")
until the token cap; every repeated line costs decode time and adds nothing.
:class:`RepetitionStop` looks at the text generated so far and names the loop
it sees, or says nothing. It is pure (text in, reason out), so every backend can
call it after each token, and a test can pin its behaviour without a model.

Two rules, both on the *generated* text only:

* **lines**: the last ``line_repeats`` complete, non-empty lines are the same
  (after stripping spaces): ``"12\\n12\\n12\\n"``.
* **loop**: the text ends with one unit of ``min_unit`` to ``max_unit``
  characters repeated ``loop_repeats`` times in a row, with no line break
  needed: ``"The answer is 12. The answer is 12. ..."``. Units shorter than
  ``min_unit`` never count, so ``"ha ha ha"``, ``"----"`` or ``"1 1 1"`` go on.

The generation keeps the text it produced (nothing is cut); its
``finish_reason`` is ``"repetition"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from reflectnb.errors import OptionError

REASON = "repetition"


@dataclass(frozen=True)
class RepetitionStop:
    """The repetition rules; see the module docstring."""

    line_repeats: int = 3
    loop_repeats: int = 4
    min_unit: int = 10
    max_unit: int = 200

    def __post_init__(self) -> None:
        for name in ("line_repeats", "loop_repeats", "min_unit", "max_unit"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise OptionError(f"RepetitionStop `{name}` must be an integer >= 2, got {value!r}")
        if self.max_unit < self.min_unit:
            raise OptionError(f"RepetitionStop `max_unit` ({self.max_unit}) must be >= `min_unit` ({self.min_unit})")

    def check(self, text: str) -> str | None:
        """A short description of the loop ``text`` ends in, or ``None``."""
        return self._lines(text) or self._loop(text)

    def _lines(self, text: str) -> str | None:
        if "\n" not in text:
            return None
        complete = [line.strip() for line in text.split("\n")[:-1]]  # the last piece is unfinished
        complete = [line for line in complete if line]
        tail = complete[-self.line_repeats:]
        if len(tail) == self.line_repeats and len(set(tail)) == 1:
            return f"the line {tail[0][:60]!r} {self.line_repeats} times in a row"
        return None

    def _loop(self, text: str) -> str | None:
        n = self.loop_repeats
        longest = min(self.max_unit, len(text) // n)
        for size in range(self.min_unit, longest + 1):
            if text[-1 - size] != text[-1] and len(text) > size:  # cheap filter: not this period
                continue
            unit = text[-size:]
            if unit.strip() and text.endswith(unit * n) and not _shorter_period(unit):
                return f"{unit.strip()[:60]!r} {n} times in a row"
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shorter_period(unit: str) -> bool:
    """True when ``unit`` is itself a shorter piece repeated (``"ha ha ha "``): then the loop's
    real unit is that piece, which may be under ``min_unit``."""
    return (unit + unit).find(unit, 1) < len(unit)


DEFAULT = RepetitionStop()


def resolve(setting: Any, default_on: bool) -> RepetitionStop | None:
    """The rules to apply for a ``GenerationParams.repetition_stop`` setting.

    ``None`` means the backend's default (on for the embedded model), ``True`` /
    ``False`` switch the default rules on / off, a :class:`RepetitionStop` is used as is.
    """
    if setting is None:
        return DEFAULT if default_on else None
    if isinstance(setting, RepetitionStop):
        return setting
    if isinstance(setting, bool):
        return DEFAULT if setting else None
    raise OptionError(f"`repetition_stop` must be True, False, None or a RepetitionStop, got {setting!r}")

