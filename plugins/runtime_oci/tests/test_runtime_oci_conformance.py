"""runc and crun pass the runtime conformance suite (crun is skipped, with its probe's
reason, where it cannot run: hybrid cgroup hosts)."""

from dockyard.plugin.testing.runtime import RuntimeSuite


class TestRunc(RuntimeSuite):
    runtime_name = "runc"


class TestCrun(RuntimeSuite):
    runtime_name = "crun"
