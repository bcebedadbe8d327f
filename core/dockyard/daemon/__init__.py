"""The daemon: the `dockyardd` process and what it hands every manager.

- `process`: flags, the data-root lock, listeners, signals (`dockyardd` itself);
- `config`: defaults, daemon.yaml and flags merged into one checked configuration;
- `pluginmanager`: where drivers come from (built-ins, then entry points);
- `engine`: picks and builds the drivers, then builds the managers around them;
- `events`: the event log managers publish to and `GET /events` streams;
- `cluster`: this daemon's membership in a cluster (its node record under a lease);
- `hostinfo`: facts about this host, read once;
- `builtin`: the drivers small enough to ship in the core (host and none networks).

Managers may import `events` and `hostinfo`; nothing outside the daemon imports the
rest (the network manager receives the membership from the engine, as drivers do).
Importing this package loads none of its modules.
"""
