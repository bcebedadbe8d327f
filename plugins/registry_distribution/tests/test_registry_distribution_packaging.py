"""dockyard-registry-distribution is installable, discoverable, and its probe names what a host lacks."""

import subprocess
import sys

import dockyard_registry_distribution
import pytest
from dockyard.plugin import DriverSpec
from dockyard.plugin.testing.packaging import PluginDistributionSuite


class TestPackaging(PluginDistributionSuite):
    distribution = "dockyard-registry-distribution"
    drivers = {("registry", "distribution")}


def _spec() -> DriverSpec:
    return next(iter(dockyard_registry_distribution.dockyard_registry_drivers()))


def test_the_probe_passes_where_requests_is_installed():
    assert _spec().probe() is None


def test_the_probe_names_a_missing_requests(monkeypatch):
    monkeypatch.setattr("dockyard_registry_distribution.importlib.util.find_spec", lambda name: None)
    reason = _spec().probe()
    assert reason is not None and "requests" in reason


def test_the_factory_reads_its_options(tmp_path):
    from dockyard.plugin import DriverContext
    from dockyard_registry_distribution.client import DistributionClient

    context = DriverContext(kind="registry", name="distribution", home=tmp_path, exec_root=tmp_path,
                            options={"connect-timeout": "3", "read-timeout": "7",
                                     "upload-chunk-size": "4096", "insecure-registries": "a:1, b:2",
                                     "certs-dir": str(tmp_path / "certs.d")})
    client = _spec().factory(context)
    assert isinstance(client, DistributionClient)
    assert client.timeout == (3.0, 7.0) and client.upload_chunk_size == 4096
    assert client.insecure_registries == {"a:1", "b:2"}
    assert client.certs.root == tmp_path / "certs.d"


def test_the_factory_defaults_to_dockers_certs_d_layout_and_refuses_bad_cidrs(tmp_path):
    from dockyard.plugin import DriverContext

    context = DriverContext(kind="registry", name="distribution", home=tmp_path, exec_root=tmp_path)
    assert str(_spec().factory(context).certs.root) == "/etc/dockyard/certs.d"
    bad = DriverContext(kind="registry", name="distribution", home=tmp_path, exec_root=tmp_path,
                        options={"insecure-registries": "10.0.0.0/33"})
    with pytest.raises(ValueError, match="invalid option for the distribution registry client"):
        _spec().factory(bad)


def test_importing_the_plugin_does_not_import_requests():
    """Probes run at every daemon start: the plugin module must stay light until its factory runs."""
    code = "import dockyard_registry_distribution, sys; print('requests' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
