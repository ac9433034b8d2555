"""Run a uvicorn-based server command on a listening socket inherited from the parent.

``python serve_on_socket.py FD MODULE [ARGS...]`` runs ``python -m MODULE ARGS...``
with every ``uvicorn.Server.run`` serving the socket whose file descriptor is ``FD``
(passed with ``subprocess.Popen(pass_fds=...)``) instead of binding ``--host/--port``.

Why: a test that picks a free port, releases it and hands the number to a server
races every other process on the machine for that port. Here the parent binds port 0
and listens before the child starts, so the port is never free, and requests sent
while the model loads wait in the listen backlog instead of being refused.

Non-goals: servers that are not built on uvicorn (``transformers serve`` and
``llama_cpp.server`` both are).
"""

from __future__ import annotations

import runpy
import socket
import sys


def main(argv: list[str]) -> None:
    fd, module, *args = argv
    sock = socket.socket(fileno=int(fd))

    import uvicorn

    run = uvicorn.Server.run
    uvicorn.Server.run = lambda self, sockets=None: run(self, sockets=[sock])  # type: ignore[method-assign]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
