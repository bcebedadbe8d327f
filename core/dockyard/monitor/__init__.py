"""Container monitors: one small process per running container that outlives the daemon.

- `process`: the monitor itself (the container's parent, its stdio, its log, its exit);
- `client`: the daemon's side, which starts monitors through the zygote and talks to them.

The monitor side imports only small modules of the standard library: every container
pays for what a monitor loads. Importing this package loads nothing.
"""
