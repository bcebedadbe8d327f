"""Docker's local-driver options, checked without mounting anything (no root needed)."""

import pytest
from dockyard.plugin import VolumeDriverError
from dockyard.plugin import mounts as kernel
from dockyard_volume_local.options import data_for_kernel, plan_mount, without_secrets
from dockyard_volume_local.store import check_name


def test_no_options_make_a_plain_directory():
    assert plan_mount({}) is None


@pytest.mark.parametrize("options, message", [
    ({"size": "1m"}, 'invalid option: "size": the local driver limits size only for tmpfs'),
    ({"bogus": "1"}, 'invalid option: "bogus"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"device": "tmpfs"}, 'missing required option: "type"'),
    ({"o": "size=1m"}, 'missing required option: "device"'),
    ({"o": "size=1m", "device": "tmpfs"}, 'missing required option: "type"'),
    ({"type": "", "device": "tmpfs"}, 'missing required option: "type"'),
    ({"type": "none", "device": "/srv"}, "add o=bind"),
    ({"type": "none", "device": "/srv", "o": "bind,size=1m"}, "does not apply to a bind"),
    ({"type": "ext4", "device": "/dev/sdz", "o": "remount"}, "leave it out"),
    ({"type": "ext4", "device": "/srv/disk.img", "o": "loop"}, "losetup"),
])
def test_bad_options_are_refused_saying_what_to_do(options, message):
    with pytest.raises(VolumeDriverError, match=message.replace("(", r"\(")):
        plan_mount(options)


def test_o_words_become_flags_and_the_rest_is_data():
    plan = plan_mount({"type": "tmpfs", "device": "tmpfs", "o": "size=64m,ro,nosuid,uid=1000,rw,noexec"})
    assert plan.fstype == "tmpfs" and plan.device == "tmpfs" and not plan.bind
    assert plan.flags == kernel.MS_NOSUID | kernel.MS_NOEXEC  # rw after ro clears it, as in mount(8)
    assert plan.data == "size=64m,uid=1000" and plan.propagation == 0


def test_a_bind_takes_flags_and_propagation():
    plan = plan_mount({"type": "none", "device": "/srv/data", "o": "rbind,ro,rprivate"})
    assert plan.bind and plan.data == ""
    assert plan.flags == kernel.MS_BIND | kernel.MS_REC | kernel.MS_RDONLY
    assert plan.propagation == kernel.MS_PRIVATE | kernel.MS_REC


def test_network_filesystems_get_addr_as_an_ip_and_passwords_stay_hidden():
    plan = plan_mount({"type": "nfs", "device": ":/export", "o": "addr=localhost,rw,nfsvers=4"})
    assert data_for_kernel(plan) in ("addr=127.0.0.1,nfsvers=4", "addr=::1,nfsvers=4")
    same = plan_mount({"type": "nfs", "device": ":/export", "o": "addr=10.0.0.1"})
    assert data_for_kernel(same) == "addr=10.0.0.1"
    assert without_secrets("username=me,password=hunter2") == "username=me,password=********"


@pytest.mark.parametrize("name", ["ab", "my-volume_1.0", "A1", "0" * 64])
def test_docker_volume_names_are_accepted(name):
    check_name(name)


@pytest.mark.parametrize("name", ["", "a", "..", "../x", "a/b", ".hidden", "-x", "x y", "x\n", "v" * 201])
def test_other_names_are_refused(name):
    with pytest.raises(VolumeDriverError):
        check_name(name)
