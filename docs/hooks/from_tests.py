"""MkDocs hook: the site shows what the browser tests saw — executed notebooks and a gallery of the views.

The teaching notebooks are stored in git without outputs. The browser test that runs each one in a
real JupyterLab (``tests/browser/test_browser_notebooks.py``) leaves, under ``build/docs-from-tests/``
(``REFLECTNB_DOCS_FROM_TESTS`` moves it; ``tests/browser/docs_output.py`` writes it):

* ``notebooks/<name>.ipynb``: the notebook as JupyterLab saved it after the run. Its page is built
  from this copy (every view's static form, the tables, the charts) instead of the bare notebook —
  but only while its cells are still the ones in ``notebooks/`` (a stale copy is not shown);
* ``gallery/<view>.png``: Playwright's screenshot of one view's element, shown on ``gallery.md``.

Without them (a fresh clone) the site still builds: the notebook pages show no outputs and each
gallery picture is replaced by a note that says which test makes it; the build log says what to run.

Non-goals: running notebooks here (the docs build stays fast and never loads the model).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
GALLERY_PAGE = "gallery.md"
RUN_FIRST = ("bash scripts/dev.sh test, or .venv/bin/python -m pytest tests/browser/test_browser_notebooks.py "
             "tests/browser/test_browser_gallery.py")
IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\(gallery/(?P<name>[\w.-]+\.png)\)")

log = logging.getLogger("mkdocs.hooks.from_tests")


def folder() -> Path:
    """Where the browser tests leave executed notebooks and screenshots."""
    return Path(os.environ.get("REFLECTNB_DOCS_FROM_TESTS") or ROOT / "build" / "docs-from-tests")


def _sources(path: Path) -> list[tuple[str, str]]:
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return [(c.get("cell_type", ""), "".join(c.get("source", ""))) for c in cells]


def executed_copy(notebook: Path) -> Path | None:
    """The browser run's saved copy of ``notebook``, if there is one with the same cells; else ``None``."""
    copy = folder() / "notebooks" / notebook.name
    if not copy.is_file():
        return None
    if _sources(copy) != _sources(notebook):
        log.info("from_tests: %s was edited since the browser tests ran it; its page shows no outputs "
                 "until they run again (%s)", notebook.name, RUN_FIRST)
        return None
    return copy


@event_priority(90)  # after reference.py's on_files (100) adds the notebooks, before mkdocs-jupyter wraps them
def on_files(files: Files, config: Any) -> Files:
    """Swap each notebook for its executed copy, and add the gallery's screenshots."""
    shown = 0
    for file in [f for f in files if re.fullmatch(r"notebooks/[^/]+\.ipynb", f.src_uri)]:
        copy = executed_copy(Path(file.abs_src_path))
        if copy is None:
            continue
        files.remove(file)
        files.append(File(file.src_uri, src_dir=str(folder()), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
        shown += 1
    if shown == 0:
        log.info("from_tests: notebook pages show no outputs: no executed notebooks in %s (run %s first)",
                 folder() / "notebooks", RUN_FIRST)
    for png in sorted((folder() / "gallery").glob("*.png")):
        files.append(File(f"gallery/{png.name}", src_dir=str(folder()), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """On the gallery page, a picture the tests have not made yet becomes a note saying how to make it."""
    if page.file.src_uri != GALLERY_PAGE:
        return markdown

    def missing(match: re.Match) -> str:
        if (folder() / "gallery" / match["name"]).is_file():
            return match[0]
        log.info("from_tests: gallery/%s has not been taken yet (run %s first)", match["name"], RUN_FIRST)
        return (f'!!! note "No screenshot yet: {match["alt"]}"\n    The browser tests take it: `{RUN_FIRST}`, '
                f"then build the docs again.\n")
    return IMAGE.sub(missing, markdown)
