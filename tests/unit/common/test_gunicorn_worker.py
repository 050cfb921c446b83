"""Issue 17, item 5: the worker's quick stop must not deadlock on the signals Ctrl-C sends.

gthread's handler called ``ThreadPoolExecutor.shutdown`` inside the signal handler.  When the signal found the
main thread holding the pool's lock (inside ``submit``, as for every new connection, or inside the first
handler's own ``shutdown`` when the master's SIGQUIT followed the terminal's SIGINT), the handler waited for a
lock its own thread held: the worker hung until the master's SIGKILL.  Here, in a process of its own, both
signals arrive while the main thread holds that lock; the worker must mark the stop and carry on.  (With
gunicorn's own ``gthread.ThreadWorker`` in its place, this process hangs.)
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, signal
    from concurrent.futures import ThreadPoolExecutor
    from gunicorn import glogging
    from gunicorn.config import Config
    from redfile_common.gunicorn_worker import ThreadWorker

    cfg = Config()
    worker = ThreadWorker(1, os.getpid(), [], None, 30, cfg, glogging.Logger(cfg))
    worker.tpool = ThreadPoolExecutor(max_workers=2)
    worker.method_queue.init()
    signal.signal(signal.SIGINT, worker.handle_quit)
    signal.signal(signal.SIGQUIT, worker.handle_quit)
    with worker.tpool._shutdown_lock:  # private: where the main thread is during submit(), which takes this lock
        os.kill(os.getpid(), signal.SIGINT)  # the terminal's Ctrl-C
        os.kill(os.getpid(), signal.SIGQUIT)  # the master passing the stop on
        for _ in range(10_000):  # Python runs the handlers between these instructions
            pass
    worker.tpool.submit(print, "the pool still takes work")
    worker.tpool.shutdown(wait=True)
    print("stopping:", not worker.alive)
    """
)


def test_the_stop_signals_do_not_deadlock_a_worker_inside_submit():
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker hung in its signal handler")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["the pool still takes work", "stopping: True"]
