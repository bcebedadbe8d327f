"""daemon.yaml and flags: precedence, validation, and messages that name the problem."""

from __future__ import annotations

import pytest
from dockyard.daemon.config import ConfigError, build_config


def config_from(tmp_path, text: str, **flags):
    path = tmp_path / "daemon.yaml"
    path.write_text(text)
    return build_config(str(path), True, flags)


def test_defaults_without_a_file(tmp_path):
    config = build_config(str(tmp_path / "absent.yaml"), False, {})
    assert config.hosts == ["unix:///run/dockyard.sock"]
    assert config.data_root == "/var/lib/dockyard"


def test_an_explicit_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(str(tmp_path / "absent.yaml"), True, {})


def test_flags_override_the_file(tmp_path):
    config = config_from(tmp_path, "data-root: /srv/a\nstorage-driver: vfs\n",
                         data_root="/srv/b", storage_driver=None)
    assert config.data_root == "/srv/b"
    assert config.storage_driver == "vfs"


def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting\\(s\\): data_root, stroage-driver"):
        config_from(tmp_path, "stroage-driver: vfs\ndata_root: /x\n")


def test_wrong_types_are_named(tmp_path):
    with pytest.raises(ConfigError, match="'live-restore' must be true or false"):
        config_from(tmp_path, "live-restore: sometimes\n")
    with pytest.raises(ConfigError, match="'max-concurrent-downloads' must be a non-negative"):
        config_from(tmp_path, "max-concurrent-downloads: -1\n")


def test_malformed_yaml_says_where(tmp_path):
    with pytest.raises(ConfigError, match="is not valid YAML at line 3.*flow sequence started at line 2"):
        config_from(tmp_path, "hosts:\n  - [unclosed\n")


def test_a_yaml_list_at_top_level_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="must be a mapping"):
        config_from(tmp_path, "- data-root\n")


def test_relative_data_root_and_bad_storage_opts(tmp_path):
    with pytest.raises(ConfigError, match="absolute path"):
        config_from(tmp_path, "data-root: relative/dir\n")
    with pytest.raises(ConfigError, match="key=value"):
        config_from(tmp_path, "storage-opts: [oops]\n")
