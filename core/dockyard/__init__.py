"""dockyard: a Docker-style container engine with pluggable drivers.

Packages by role (each one's docstring says what it owns and who may import it):
- `plugin`: the plugin surface, the only part third-party driver packages import;
- `daemon`: the dockyardd process, its configuration, engine, events and plugin manager;
- `api`: the Docker Engine API over HTTP; `client` and `cli`: its clients;
- `images`, `containers`, `networks`, `volumes`, `registries`, `builder`, `monitor`: one
  package per managed thing;
- `formats`: the parsers the CLI and the daemon share; `errors`: the engine's errors.

This package is imported by every `dockyard` CLI invocation, so it stays empty on
purpose: importing it must cost nothing beyond the version string.
"""

__version__ = "0.1.0"

# The Engine API version this daemon speaks, and the oldest one it still accepts.
API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
