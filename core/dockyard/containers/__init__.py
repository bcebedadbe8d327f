"""Containers: their configuration, state, monitors, logs and the manager that runs them.

The container manager owns every container record; one class keeps the state and the
locks and calls a module per concern, each a set of plain functions taking it first:
- `manager`: `ContainerManager` (records, in-memory state, locks, lookup, the verbs' table);
- `model`: the container record, as Docker's JSON shapes it, and how it is saved;
- `hostconfig`: HostConfig defaults and checks, network mode, log limits;
- `create`: a new container: image config, name, requested networks, its layers;
- `mounts`: Mounts entries from -v, --mount, --volumes-from, and each run's volumes;
- `start`: the bundle and spec, the runtime's create and start, a failed start, cleanup;
- `errors`: `StartFailed`, the runtime's refusal to start or exec;
- `attach`: stdio through the monitor, including attaches made before the start;
- `network`: the container's namespace, its networks at start and exit, connect;
- `etc_files`: the container's /etc/hostname, /etc/hosts and /etc/resolv.conf;
- `supervision`: waiting for exits, the restart policy and its backoff, --rm;
- `health`: the healthcheck probes on their timer;
- `stop`: stop, kill, restart, pause and unpause;
- `wait`, `rename`, `update`: one verb each;
- `remove`: remove and prune;
- `restore`: live restore at daemon start: re-attach, settle, restart;
- `exec`: exec records and processes started in a running container;
- `filesystem`: diff, export, copy in and out, commit;
- `release`: deleting a finished run's runtime record off the caller's path;
- `ocispec`: the configuration turned into an OCI runtime spec, and Docker's checks;
- `logs`, `stats`, `procs`: reading the json-file log, cgroup statistics, `top`.

Only the engine (which builds the manager), the API (which calls its methods and reads
through `filesystem`, `logs`, `stats` and `procs`) and the builder (RUN steps through
the manager, `ocispec` and `filesystem` for its files) import this package, and the
network manager borrows `logs.parse_time_nano`; nothing outside it imports the concern
modules, which only the manager and each other call.
"""
