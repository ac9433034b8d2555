"""A real JupyterLab server on loopback for the browser tests and benchmarks.

A random token, a temporary root and its own Jupyter dirs; its ``python3`` kernel is
this virtual environment's Python (a kernelspec written into its own ``JUPYTER_PATH``,
which wins over any user or system ``python3`` spec). Each notebook is written
into its own folder, where its kernel runs and keeps its traces
(``.reflectnb/traces.duckdb``), so tests do not see each other's runs.
``--LabApp.expose_app_in_browser`` exposes ``window.jupyterapp`` so tests drive
notebooks through JupyterLab's command registry. Each test shuts its kernels down
(:meth:`Lab.shutdown_kernels`): a kernel holding the embedded model takes hundreds of MB.

The port: the server is started with port 0 (the OS picks a free one) and the port it
bound is read back from its ``jpserver-<pid>.json``; no number is chosen here and released
before use. If the port is taken between the server's own pick and its bind (it then
exits saying no port was available), it is started again.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat


class Lab:
    """A running JupyterLab: its URL, token and root folder."""

    def __init__(self, root: Path, port: int, token: str, process: subprocess.Popen):
        self.root, self.port, self.token, self.process = root, port, token, process
        self.url = f"http://127.0.0.1:{port}"

    def notebook(self, name: str, cells: list[str] | Path) -> str:
        """Write a notebook (code cells, or a copy of a notebook file) into its own folder of the root.

        Returns its path relative to the root. Its kernel runs in that folder, so its traces go to
        that folder's ``.reflectnb/traces.duckdb``: tests do not see each other's runs.
        """
        if isinstance(cells, Path):
            nb = nbformat.read(cells, as_version=4)
        else:
            nb = nbformat.v4.new_notebook()
            nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        folder = self.root / Path(name).stem
        folder.mkdir(exist_ok=True)
        nbformat.write(nb, folder / name)
        return f"{folder.name}/{name}"

    def api(self, path: str, method: str = "GET", timeout: float = 5) -> object:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every session and shut every kernel down (a test's kernels must not hold memory or CPU after it)."""
        for kind in ("sessions", "kernels"):
            for item in self.api(f"/api/{kind}"):
                try:
                    self.api(f"/api/{kind}/{item['id']}", method="DELETE", timeout=30)
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:  # 404: gone with its session
                        raise


def _kernelspec(share: Path) -> None:
    """A ``python3`` kernelspec running this Python, so kernels import this checkout's reflectnb."""
    spec = share / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (reflectnb tests)", "language": "python", "metadata": {"debugger": True}}))


def _settings(settings: Path) -> None:
    """Lab settings the drivers rely on: every cell stays in the DOM (``cell_node`` finds a cell by its position)."""
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))


PORT_LOST = "could not be started because no available port could be found"  # jupyter_server's words


# The command line of each front-end's server: JupyterLab, or Jupyter Notebook 7 (``python -m notebook``),
# both with ``window.jupyterapp`` exposed so tests drive them through the same command registry.
APPS = {
    "jupyterlab": ["-m", "jupyterlab", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--LabApp.extension_manager=readonly"],
    "notebook": ["-m", "notebook", "--JupyterNotebookApp.expose_app_in_browser=True"],
}


def start_lab(root: Path, home: Path, tries: int = 3, app: str = "jupyterlab") -> Lab:
    """Start JupyterLab (or Notebook 7: ``app="notebook"``) serving ``root``, its own Jupyter dirs under
    ``home``; wait until it answers."""
    for _ in range(tries):
        try:
            return _start_lab(root, home, app)
        except _PortLost:
            continue  # another process took the port between the server's pick and its bind: start again
    raise RuntimeError(f"JupyterLab lost its port {tries} times; log:\n{(home / 'lab.log').read_text()[-3000:]}")


class _PortLost(Exception):
    """The server's port was taken by another process before the server could bind it."""


def _start_lab(root: Path, home: Path, app: str = "jupyterlab") -> Lab:
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "REFLECTNB_TRACES"}  # each kernel: traces in its folder
    env = {**env, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTER_PATH": os.pathsep.join([str(home / "share"), *filter(None, [os.environ.get("JUPYTER_PATH")])]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    home.mkdir(parents=True, exist_ok=True)
    _kernelspec(home / "share")
    _settings(home / "settings")
    log = open(home / "lab.log", "w")
    process = subprocess.Popen(
        [sys.executable, *APPS[app], "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    info = home / "runtime" / f"jpserver-{process.pid}.json"
    server = None
    while True:
        try:
            if server is None and info.is_file():
                server = Lab(root, json.loads(info.read_text())["port"], token, process)
                server.log, server.log_path = log, home / "lab.log"
            if server is not None:
                server.api("/api/status")
                return server
        except (OSError, ValueError):  # not answering yet, or the info file half written
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_process(process)
            log.close()
            text = (home / "lab.log").read_text()
            if PORT_LOST in text:
                raise _PortLost()
            raise RuntimeError(f"{app} did not start; log:\n{text[-3000:]}")
        time.sleep(0.3)


def stop_lab(server: Lab) -> None:
    """Stop the kernels, then the server (its whole process group; SIGKILL if SIGTERM is not enough)."""
    process = server.process
    try:
        server.shutdown_kernels()  # kernels have process groups of their own: a SIGKILL of the server orphans them
    except OSError:
        pass  # the server is not answering: stop it anyway
    _stop_process(process)
    server.log.close()


def _stop_process(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL if it has not ended within 15 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass  # already gone
