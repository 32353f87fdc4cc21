"""What this machine's kernel accepts: the ground truth the operator's environment-size limit is checked against."""

from __future__ import annotations

import errno
import subprocess


def execve_accepts(name: str, value: str) -> bool:
    """Whether execve(2) starts a program with this one variable in its environment, as a node's container runtime
    would have to (Linux refuses a single string over MAX_ARG_STRLEN with E2BIG)."""
    try:
        subprocess.run(["/bin/true"], env={name: value}, check=True)
    except OSError as exc:
        assert exc.errno == errno.E2BIG, exc
        return False
    return True
