"""Instructions per request, counted by valgrind's callgrind: a measure of CPU work that does not move with
the machine's speed or load.

On a shared 2-core virtual machine the CPU time of the same requests moves by 10-40 % from round to round
(and a null A/B shows +-6-10 %), so a change worth a few percent cannot be seen in it. The instructions
the server process executes for the same requests are the same to about 1 % whatever else the machine
does. They are not time: a cache miss costs more than an addition. Use them to compare two versions of a
handler; use ``bench_web.py`` for what a client sees.

How: the benchmark re-runs itself under ``valgrind --tool=callgrind --instr-atstart=no`` (set-up runs
uninstrumented, about 5x slower), and around each measured round calls callgrind's client requests
(``CALLGRIND_ZERO_STATS``, ``CALLGRIND_DUMP_STATS_AT``) through a 3-function C helper built here with the
system's C compiler from ``valgrind/callgrind.h``. Each round's dump holds its instruction count.
PostgreSQL's own processes are not counted.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD_ENV = "IMMUNOSEP_BENCH_CALLGRIND"  # in the child: the path of the helper library
_HEADER = Path("/usr/include/valgrind/callgrind.h")
_HELPER_C = """
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void cg_zero(void) { CALLGRIND_ZERO_STATS; }
void cg_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


def missing() -> str | None:
    """Why instructions cannot be counted here (None: they can)."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (Debian: apt-get install valgrind)"
    if not _HEADER.exists():
        return f"{_HEADER} is missing (Debian's valgrind package has it)"
    if shutil.which("cc") is None:
        return "no C compiler (cc) to build the client-request helper"
    return None


def run_self_under_callgrind(argv: list[str]) -> dict[str, int]:
    """Run ``python argv...`` under callgrind, as a child that meters itself with :class:`Meter`; returns
    the instructions of each labelled dump."""
    reason = missing()
    if reason is not None:
        raise SystemExit(f"--instructions: {reason}")
    with tempfile.TemporaryDirectory(prefix="callgrind_") as tmp:
        lib = Path(tmp) / "libcg.so"
        src = Path(tmp) / "cg.c"
        src.write_text(_HELPER_C)
        cc = shutil.which("cc") or "cc"
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        dumps = Path(tmp) / "dumps"
        dumps.mkdir()
        env = {**os.environ, CHILD_ENV: str(lib), "PYTHONHASHSEED": "0"}
        cmd = [
            shutil.which("valgrind") or "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={dumps}/callgrind.out.%p",
            sys.executable,
            *argv,
        ]
        done = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the run under callgrind failed:\n{done.stderr[-3000:]}")
        return read_dumps(dumps)


def read_dumps(folder: Path) -> dict[str, int]:
    """Instructions of each dump made by :meth:`Meter.dump`, by its label."""
    counts: dict[str, int] = {}
    for path in folder.glob("callgrind.out.*"):
        text = path.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if label and total:
            counts[label.group(1)] = int(total.group(1))
    return counts


class Meter:
    """In the child: instrument and count the work between :meth:`zero` and :meth:`dump`."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL(os.environ[CHILD_ENV])
        self._lib.cg_start()

    def zero(self) -> None:
        self._lib.cg_zero()

    def dump(self, label: str) -> None:
        """End a measured stretch; ``label`` (no spaces) names its dump."""
        self._lib.cg_dump(label.encode())


def in_child() -> bool:
    """True in the process that runs under callgrind for :func:`run_self_under_callgrind`."""
    return CHILD_ENV in os.environ
