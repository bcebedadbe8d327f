"""`docker top`: the host's `ps`, narrowed to the processes of one container.

A container's processes are those in its init's PID namespace; `ps` runs on the host
with the user's arguments (Docker's behaviour), and its rows are kept by PID.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from dockyard.errors import InvalidParameter


def container_pids(init_pid: int) -> set[int]:
    try:
        namespace = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return set()
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                pids.add(int(entry))
        except OSError:
            continue  # the process ended while we looked
    return pids


def top_processes(init_pid: int, ps_args: str) -> tuple[list[str], list[list[str]]]:
    pids = container_pids(init_pid)
    result = subprocess.run(["ps", *shlex.split(ps_args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise InvalidParameter(f"ps: {result.stderr.strip() or 'failed'} (ps_args={ps_args!r})")
    lines = result.stdout.splitlines()
    if not lines:
        return [], []
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidParameter(f"Couldn't find PID field in ps output (ps_args={ps_args!r})")
    pid_index = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_index and fields[pid_index].isdigit() and int(fields[pid_index]) in pids:
            rows.append(fields)
    return titles, rows
