"""The documentation site: it builds with warnings as errors, and its generated pages match the code.

One real ``mkdocs build --strict`` in a subprocess (about 10 s) serves every
test of the built site; the magic reference is checked option by option against
the parsers the magics use, so it cannot drift from them.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Runs mkdocs in this interpreter, then says whether the build imported torch (it must not need to).
BUILD = """
import sys
from mkdocs.__main__ import cli
try:
    cli(sys.argv[1:])
except SystemExit as done:
    print("TORCH_IMPORTED=" + str("torch" in sys.modules))
    raise
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-c", BUILD, "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert "TORCH_IMPORTED=False" in proc.stdout, "building the docs imported torch"
    return out


def page(site: Path, name: str) -> str:
    path = site / name / "index.html" if name else site / "index.html"
    assert path.is_file(), f"the site has no page {path.relative_to(site)}"
    return path.read_text(encoding="utf-8")


def section(page_html: str, anchor: str) -> str:
    """The HTML of one ``<h2 id=anchor>`` section, up to the next ``<h2``."""
    start = page_html.find(f'<h2 id="{anchor}"')
    assert start >= 0, f"the page has no section #{anchor}"
    end = page_html.find("<h2", start + 1)
    return page_html[start:end if end > 0 else None]


def text(page_html: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page_html)).split())


def magic_parsers() -> dict:
    """Every magic's option parser, found from the code (not from the docs hook)."""
    from reflectnb.magics.options import PARSERS
    from reflectnb.magics.sql import parser as sql_parser

    parsers = {name: make() for name, make in PARSERS.items()}
    parsers["reflect_sql"] = sql_parser()
    if importlib.util.find_spec("reflectnb.magics.evaluate"):
        parsers["reflect_eval"] = importlib.import_module("reflectnb.magics.evaluate").reflect_eval_parser()
    return parsers


def test_the_site_builds_with_home_magic_reference_notebooks_and_api_pages(site):
    assert "bash scripts/dev.sh quickstart" in text(page(site, ""))
    magics = text(page(site, "reference/magics"))
    assert "--rounds" in magics and "--write" in magics and "%%reflect" in magics
    assert "reflectnb quickstart" in text(page(site, "notebooks/00-quickstart"))
    assert 'id="reflectnb.api.run_strategy"' in page(site, "reference/api/api")
    methods = text(page(site, "reference/strategies"))
    assert "reflectnb.reflect(task, rounds=3" in methods and "%%debate" in methods


@pytest.mark.parametrize("magic", sorted(magic_parsers()))
def test_the_magic_reference_lists_every_option_of_the_magic(site, magic):
    parser = magic_parsers()[magic]
    html_section = section(page(site, "reference/magics"), magic)
    for action in parser._actions:
        names = action.option_strings or [action.dest]
        for name in names:
            assert f"<code>{name}</code>" in html_section, f"%{magic}: {name} is missing from the magic reference"
        if action.help:
            assert " ".join(action.help.replace("%%", "%").split())[:40] in text(html_section)
    for choice in (c for a in parser._actions for c in (a.choices or ())):
        assert f"<code>{choice}</code>" in html_section


def test_every_magic_of_the_extension_has_a_section_in_the_reference(site):
    from reflectnb.magics import ReflectMagics

    magics = page(site, "reference/magics")
    for kind, names in ReflectMagics.magics.items():
        for name in names:
            prefix = "%%" if kind == "cell" else "%"
            assert prefix + name in section(magics, name), f"{prefix}{name} has no section"


def test_every_notebook_is_a_page_in_the_navigation(site):
    home = page(site, "")
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        first_cell = json.loads(notebook.read_text(encoding="utf-8"))["cells"][0]
        title = "".join(first_cell["source"]).splitlines()[0].lstrip("# ").strip()
        assert title in text(page(site, f"notebooks/{notebook.stem}"))
        assert f'href="notebooks/{notebook.stem}/"' in home, f"{notebook.name} is not in the navigation"


@pytest.mark.parametrize("page_name, anchor", [
    ("reference/api/backends", "reflectnb.backends.load_model"),
    ("reference/api/trace", "reflectnb.trace.Recorder"),
    ("reference/api/store", "reflectnb.store.open_store"),
    ("reference/api/strategies", "reflectnb.strategies.reflect.reflect"),
    ("reference/api/strategies", "reflectnb.strategies.critique.critique"),
    ("reference/api/strategies", "reflectnb.strategies.debate_mad.debate_mad"),
    ("reference/api/strategies", "reflectnb.strategies.debate_du.debate_du"),
    ("reference/api/strategies", "reflectnb.strategies.tree.tree_search"),
    ("reference/api/evaluate", "reflectnb.evaluate.compare.compare"),
    ("reference/api/decoding", "reflectnb.decoding.schedules.Cyclic"),
])
def test_the_api_reference_documents_the_public_names(site, page_name, anchor):
    assert f'id="{anchor}"' in page(site, page_name)


def public_names() -> list[str]:
    """Every name ``import reflectnb`` and ``reflectnb.widgets`` offer, as the module path it is defined at."""
    import reflectnb

    names = []
    for name, (module, attr) in reflectnb._LAZY.items():
        if attr is None:
            names.append(module)
        else:
            value = getattr(importlib.import_module(module), attr)
            names.append(f"{value.__module__}.{value.__qualname__}")
    widgets = importlib.import_module("reflectnb.widgets")
    names += [f"{getattr(widgets, n).__module__}.{n}" for n in widgets.__all__]
    return names


def test_every_public_name_has_an_entry_in_the_api_reference(site):
    pages = " ".join(path.read_text(encoding="utf-8") for path in (site / "reference" / "api").rglob("index.html"))
    missing = [name for name in public_names() if f'id="{name}"' not in pages]
    assert missing == [], f"public names without an API reference entry: {missing}"


def test_sphinx_roles_in_docstrings_render_as_links_or_code(site):
    api = page(site, "reference/api/api")
    assert ":class:" not in api and ":func:" not in api and "<autoref" not in api
    assert re.search(r'<a class="autorefs[^"]*"[^>]*href="[^"]*#reflectnb\.trace\.FanOut"', api)


def test_the_docstring_extension_repairs_prose_after_a_parameter_list():
    spec = importlib.util.spec_from_file_location("griffe_docstrings", ROOT / "docs/hooks/griffe_docstrings.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    fixed, changed = ext.close_list_sections("Parameters\n----------\nx : int\n    The x.\n\nIf x is 0, stop.")
    assert changed and fixed.endswith("Notes\n-----\nIf x is 0, stop.")
    kept, changed = ext.close_list_sections("Parameters\n----------\nx : int\n\ny, z : float\n    Both.")
    assert not changed and "Notes" not in kept
    assert ext.roles_to_markdown(":func:`~a.b.c`") == '<autoref identifier="a.b.c" optional><code>c</code></autoref>'


# -- pages from the browser tests' runs (docs/hooks/from_tests.py) -------------------------------------------

GALLERY_VIEWS = {"live-loop", "critique-verdicts", "debate", "token-view", "schedule-chart", "tree-view",
                 "run-browser"}  # one picture per view the gallery promises (issue 17)
STATIC_VIEW = re.compile(r"class='(rnb-static|reflectnb-tree|reflectnb-result|reflectnb-eval)'")
OUTPUT = re.compile(r'<div class="[^"]*\bjp-OutputArea-output\b')  # an output cell's element, not the CSS rules


def from_tests() -> Path:
    """Where the browser tests leave executed notebooks and screenshots (as the docs hook reads it)."""
    return Path(os.environ.get("REFLECTNB_DOCS_FROM_TESTS") or ROOT / "build" / "docs-from-tests")


def cell_sources(path: Path) -> list[str]:
    return ["".join(c.get("source", "")) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]


def test_notebook_pages_show_the_outputs_of_the_browser_run_when_it_left_them(site):
    """After the browser tests (``bash scripts/dev.sh test`` runs them first) each page holds the run's outputs:
    every view's static form in the saved notebook is on the page. Without them, the bare notebook."""
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shown = page(site, f"notebooks/{notebook.stem}")
        executed = from_tests() / "notebooks" / notebook.name
        if not (executed.is_file() and cell_sources(executed) == cell_sources(notebook)):
            assert not OUTPUT.search(shown), f"{notebook.name}: outputs on the page of a bare notebook"
            continue
        saved = json.loads(executed.read_text(encoding="utf-8"))
        outputs = [o for c in saved["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert outputs, f"{executed} holds no outputs"
        assert OUTPUT.search(shown), f"{notebook.name}: the executed copy's outputs are not on its page"
        views = {m.group(1) for o in outputs for m in STATIC_VIEW.finditer("".join(o.get("data", {}).get("text/html", "")))}
        for cls in views:
            assert f'class="{cls}' in shown or f"class='{cls}" in shown, f"{notebook.name}: no static {cls} on its page"


def test_the_gallery_shows_each_screenshot_the_browser_tests_took_or_says_which_test_takes_it(site):
    source = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    pictures = set(re.findall(r"\]\(gallery/([\w-]+)\.png\)", source))
    assert pictures == GALLERY_VIEWS
    gallery = page(site, "gallery")
    missing = []
    for name in sorted(pictures):
        taken = from_tests() / "gallery" / f"{name}.png"
        if taken.is_file():
            assert re.search(rf'<img[^>]+src="[^"]*\b{name}\.png"', gallery), f"{name}.png is not shown"
            assert (site / "gallery" / f"{name}.png").read_bytes() == taken.read_bytes()
        else:
            missing.append(name)
            assert f"{name}.png" not in gallery, f"{name}.png is linked but was never taken"
    assert text(gallery).count("No screenshot yet") == len(missing)  # each missing one says which tests take it
    assert 'href="gallery/"' in page(site, ""), "the gallery is not in the navigation"


def test_every_gallery_picture_is_taken_by_a_browser_test():
    """The names gallery.md shows are the names the browser tests save (a renamed picture would stay missing)."""
    tests = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests" / "browser").glob("test_*.py"))
    assert sorted(n for n in GALLERY_VIEWS if f'"{n}"' not in tests) == []


def _from_tests_hook():
    spec = importlib.util.spec_from_file_location("from_tests", ROOT / "docs/hooks/from_tests.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def test_the_docs_use_an_executed_notebook_only_while_its_cells_match_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("REFLECTNB_DOCS_FROM_TESTS", str(tmp_path))
    hook, plain = _from_tests_hook(), ROOT / "notebooks" / "00-quickstart.ipynb"
    assert hook.executed_copy(plain) is None  # nothing left by the browser tests: the bare notebook
    nb = json.loads(plain.read_text(encoding="utf-8"))
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
    (tmp_path / "notebooks").mkdir()
    copy = tmp_path / "notebooks" / plain.name
    copy.write_text(json.dumps(nb), encoding="utf-8")
    assert hook.executed_copy(plain) == copy
    code["source"] = "print('edited since the run')"
    copy.write_text(json.dumps(nb), encoding="utf-8")
    assert hook.executed_copy(plain) is None  # a stale copy is never shown
