"""MkDocs hook: pages made at build time from the code and the notebooks themselves.

* ``reference/magics.md``: the magic reference, rendered from the magics' own
  argparse parsers (:data:`reflectnb.magics.options.PARSERS`: one per registered
  strategy, made from its spec; the
  ``%reflect_sql`` parser and, where it exists, the ``%reflect_eval`` parser),
  the ``ReflectMagics`` class (line or cell magic) and its ``%config`` traits.
  Nothing in it is copied by hand, so it cannot drift from the code.
* ``notebooks/*.ipynb``: the teaching notebooks, added to the site as they are
  in ``notebooks/`` (no copy, no symlink; mkdocs-jupyter renders them without
  executing), and listed under the nav section whose value is the string
  ``notebooks/*.ipynb`` in ``mkdocs.yml``.

Non-goals: the API reference (static ``:::`` pages read by mkdocstrings).
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_NAV = "notebooks/*.ipynb"
MAGICS_PAGE = "reference/magics.md"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def magic_factories() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    """The function that builds each magic's option parser, by magic name."""
    from reflectnb.magics.options import PARSERS
    from reflectnb.magics.sql import parser as sql_parser

    factories = {**PARSERS, "reflect_sql": sql_parser}
    try:
        factories["reflect_eval"] = importlib.import_module("reflectnb.magics.evaluate").reflect_eval_parser
    except (ImportError, AttributeError):
        pass
    return factories


def magic_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every magic that takes options, by magic name, with a fresh parser for each."""
    return {name: make() for name, make in magic_factories().items()}


def magic_kinds() -> dict[str, list[str]]:
    """``{"reflect": ["cell"], "reflect_sql": ["line", "cell"], ...}``: every registered strategy's cell
    magic, then the ``ReflectMagics`` class's own magics."""
    from reflectnb.magics import ReflectMagics
    from reflectnb.strategies.spec import strategies

    kinds: dict[str, list[str]] = {name: ["cell"] for name in strategies("magic")}
    for kind in ("line", "cell"):
        for name in ReflectMagics.magics.get(kind, {}):
            kinds.setdefault(name, []).append(kind)
    return kinds


def magic_reference_markdown() -> str:
    """The whole magic reference page as Markdown."""
    kinds, factories = magic_kinds(), magic_factories()
    parsers = {name: make() for name, make in factories.items()}
    lines = ["# Magic reference", "",
             "Generated when the site is built from the magics' own option parsers "
             "(`reflectnb.magics.options.PARSERS`, one per registered strategy, made from its spec; "
             "`reflectnb.magics.sql.parser()`, "
             "`reflectnb.magics.evaluate.reflect_eval_parser()`) and the `ReflectMagics` class, so it always "
             "matches the code. A bad option makes a magic print a one-line error that names it.", "",
             "Load the extension first: `%load_ext reflectnb`.", "",
             "| magic | what it does |", "|---|---|"]
    lines += [f"| [`{_invocation(name, kinds)}`](#{name}) | {_cell(_summary(name, parsers))} |"
              for name in sorted(kinds, key=_order(parsers))]
    lines += ["", *_config_section()]
    for name in sorted(kinds, key=_order(parsers)):
        lines += ["", *_magic_section(name, kinds[name], parsers.get(name), factories.get(name))]
    return "\n".join(lines) + "\n"


def _order(parsers: dict[str, argparse.ArgumentParser]):
    known = ["reflectnb", *parsers]
    return lambda name: (known.index(name) if name in known else len(known), name)


def _invocation(name: str, kinds: dict[str, list[str]]) -> str:
    return " / ".join(("%%" if kind == "cell" else "%") + name for kind in kinds.get(name, ["line"]))


def _summary(name: str, parsers: dict[str, argparse.ArgumentParser]) -> str:
    if name in parsers:
        return parsers[name].description or ""
    from reflectnb.magics import ReflectMagics

    doc = getattr(ReflectMagics, name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _magic_section(name: str, kinds: list[str], parser: argparse.ArgumentParser | None,
                   factory: Callable[..., Any] | None) -> list[str]:
    title = " / ".join(("%%" if kind == "cell" else "%") + name for kind in kinds)
    lines = [f"## `{title}` {{#{name}}}", ""]
    if parser is None:
        return lines + [html.escape(_summary(name, {})), "", "This magic takes no options."]
    parser.prog = ("%" if "line" in kinds else "%%") + name  # a fresh parser: only this page sees the change
    lines += [html.escape(parser.description or ""), "", "```text", parser.format_usage().rstrip()]
    if "cell" in kinds:
        lines.append(f"{'(as a cell magic: %%' + name + ' on the first line) ' if 'line' in kinds else ''}"
                     "the cell's text follows on the next lines")
    lines += ["```", "", *_examples(factory)]
    for group_title, actions in _groups(parser):
        lines += [f"**{group_title}**", "", "| option | value | default | meaning |", "|---|---|---|---|"]
        lines += [_option_row(parser, action) for action in actions]
        lines.append("")
    lines += ['??? note "Full help text (`format_help()`)"', "", "    ```text",
              *("    " + line for line in parser.format_help().rstrip().splitlines()), "    ```"]
    return lines


def _examples(factory: Callable[..., Any] | None) -> list[str]:
    """The ``Usage::`` block of the docstring of the module that builds the parser, if it has one."""
    doc = sys.modules[factory.__module__].__doc__ if factory else ""
    doc = doc or ""
    if "Usage::" not in doc:
        return []
    block = []
    for line in doc.split("Usage::", 1)[1].splitlines()[1:]:
        if line.strip() and not line.startswith("    "):
            break
        block.append(line[4:])
    return ["Examples (from the module's docstring):", "", "```text", *"\n".join(block).strip().splitlines(),
            "```", ""]


def _groups(parser: argparse.ArgumentParser) -> Iterator[tuple[str, list[argparse.Action]]]:
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if actions:
            title = group.title or "options"
            yield ("arguments" if title == "positional arguments" else title), actions


def _option_row(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}` (positional)"
    return (f"| {names} | {_value(action)} | {_default(action)} | "
            f"{_cell(parser._get_formatter()._expand_help(action))} |")


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    if action.choices:
        return " ".join(f"`{c}`" for c in action.choices)
    kind = getattr(action.type, "__name__", "text") if action.type else "text"
    meta = action.metavar or action.dest.upper()
    return f"`{meta}` ({_TYPE_NAMES.get(kind, kind)})"


_TYPE_NAMES = {"positive_int": "integer > 0", "non_negative_float": "number ≥ 0", "int": "integer",
               "float": "number", "str": "text"}


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: escaped HTML, no pipes, one line."""
    return html.escape(" ".join(text.split())).replace("|", "&#124;")


def _config_section() -> list[str]:
    from reflectnb.magics import ReflectMagics

    lines = ["## Defaults: `%config ReflectMagics`", "",
             "Set once per kernel, e.g. `%config ReflectMagics.model = \"hf:/models/Qwen2.5-1.5B-Instruct\"`; "
             "an option on a magic's line wins over these.", "",
             "| setting | type | default | meaning |", "|---|---|---|---|"]
    for name, trait in sorted(ReflectMagics.class_traits(config=True).items()):
        lines.append(f"| `ReflectMagics.{name}` | {type(trait).__name__} | `{trait.default_value!r}` | "
                     f"{_cell(trait.help or '')} |")
    return lines


def notebook_paths() -> list[Path]:
    """The teaching notebooks, in file-name order."""
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _notebook_title(path: Path) -> str:
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        source = "".join(cell.get("source", []))
        if cell.get("cell_type") == "markdown" and source.lstrip().startswith("# "):
            return source.lstrip()[2:].splitlines()[0].strip()
    return path.stem


def on_config(config: Any) -> Any:
    """Fill the nav section marked ``notebooks/*.ipynb`` with one entry per notebook."""
    for section in config["nav"] or []:
        if isinstance(section, dict):
            for title, value in section.items():
                if value == NOTEBOOK_NAV:
                    section[title] = [{_notebook_title(p): f"notebooks/{p.name}"} for p in notebook_paths()]
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the .ipynb files it renders
def on_files(files: Files, config: Any) -> Files:
    """Add the generated magic reference and the notebooks to the site's files."""
    files.append(File.generated(config, MAGICS_PAGE, content=magic_reference_markdown()))
    for path in notebook_paths():
        # A plain File rooted at the repository (not File.generated): mkdocs-jupyter's wrapper reads
        # abs_src_path through src_dir, which a generated file does not have.
        files.append(File(f"notebooks/{path.name}", src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files
