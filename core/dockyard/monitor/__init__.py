"""Container monitors: one small process per running container that outlives the daemon.

The daemon imports `client` and `protocol` only; a monitor process imports the rest:
- `protocol`: the wire format both sides share (control-socket requests, frames, zygote);
- `client`: the daemon's side, which starts monitors through the zygote and talks to them;
- `zygote`: the resident process that forks a monitor per container, copy-on-write;
- `process`: the monitor itself (the container's parent, its state, its loop, its exit);
- `sessions`: connections on the control socket and the output queued for each;
- `stdin`: what attached clients send to a container's or an exec's stdin;
- `exec`: exec sessions, the runtime's processes started in the running container;
- `jsonlog`: the json-file log, written with rotation;
- `unix`: the small kernel helpers those share (UNIX sockets, pipes, wait statuses).

The monitor side imports only small modules of the standard library: every container
pays for what a monitor loads. Importing this package loads nothing.
"""
