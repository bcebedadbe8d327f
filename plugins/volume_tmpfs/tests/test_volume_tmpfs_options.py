"""The tmpfs driver's options, checked without mounting anything (no root needed)."""

import pytest
from dockyard.plugin import VolumeDriverError
from dockyard.plugin.volume_records import check_name
from dockyard_volume_tmpfs.options import TmpfsOptions, parse_options, parse_size


@pytest.mark.parametrize("text, size", [
    ("100", 100), ("64m", 64 << 20), ("64M", 64 << 20), ("64MiB", 64 << 20), ("64mb", 64 << 20),
    ("1g", 1 << 30), ("1.5k", 1536), ("512 k", 512 << 10), ("2t", 2 << 40), ("7b", 7),
])
def test_sizes_are_read_as_docker_reads_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "abc", "-1", "1x", "64mm", "0", "0.1", "1e6"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(VolumeDriverError, match="invalid size"):
        parse_size(text)


def test_options_become_the_tmpfs_data_string():
    options = parse_options({"size": "64m", "mode": "1777", "uid": "1000", "gid": "0"})
    assert options == TmpfsOptions(size=64 << 20, mode=0o1777, uid=1000, gid=0)
    assert options.mount_data() == "mode=1777,size=67108864,uid=1000,gid=0"
    defaults = parse_options({})
    assert defaults.mount_data() == "mode=1777" and defaults.status()["mode"] == "1777"


@pytest.mark.parametrize("options, message", [
    ({"mode": "999"}, "invalid mode"), ({"mode": "rwx"}, "invalid mode"), ({"mode": "17777"}, "invalid mode"),
    ({"uid": "root"}, "invalid uid"), ({"gid": "-1"}, "invalid gid"), ({"uid": "4294967295"}, "invalid uid"),
    ({"size": "1m", "type": "tmpfs", "o": "x"}, 'invalid option: "o", "type"'),
])
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(VolumeDriverError, match=message):
        parse_options(options)


@pytest.mark.parametrize("name", ["", "a", "..", "a/b", ".x", "x\n", "v" * 201])
def test_bad_names_are_refused(name):
    with pytest.raises(VolumeDriverError):
        check_name(name)
