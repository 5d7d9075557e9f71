"""PID 1 of a mock host's own PID namespace (MockHosts(own_pids=True)): runs sshd, reaps every orphan.

A real server has its own PID space: `ray stop` or `pkill` there sees only that server's processes. Mock hosts
share the test machine's, unless each runs in a PID namespace of its own (`unshare --pid --fork --mount-proc`,
/proc remounted so tools inside see only the host's processes). Its first process must do what init does: reap the
daemons that outlive their parents (Ray's, the mock engines) and pass on a termination. This is that process.
Only the standard library: it runs before the host's runtime is known.

    python pid_init.py /usr/sbin/sshd -D -e -f CONFIG
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: pid_init.py COMMAND [ARGS...]\n")
        return 2
    child = subprocess.Popen(argv)

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)  # PID 1 gets no signal it has no handler for
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == child.pid:  # the namespace ends with its init: the kernel kills what is left in it
            child.returncode = os.waitstatus_to_exitcode(status)
            return child.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
