"""dockyard.formats.mountspec: Docker's mount requests (-v, --mount, image VOLUMEs,
--volumes-from) parsed and checked with Docker's messages, and the CLI's translation of the
mount flags into the create request. Pure: no root, no daemon."""

from __future__ import annotations

import json
import os

import pytest
from dockyard.cli.containers import create, create_body, run
from dockyard.errors import InvalidParameter
from dockyard.formats.mountspec import (
    MountRequest,
    MountSpecError,
    mount_request,
    mount_requests,
    parse_bind,
    parse_mount_flag,
    ram_in_bytes,
    split_volume_flags,
    volumes_from,
)

INVALID_NAME = ('"{}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" '
                'are allowed. If you intended to pass a host directory, use absolute path')


def error_of(function, *args) -> str:
    with pytest.raises(MountSpecError) as caught:
        function(*args)
    return str(caught.value)


# -- -v / HostConfig.Binds -------------------------------------------------------------

def test_named_volume():
    request = parse_bind("data:/var/lib/data")
    assert request == MountRequest("volume", "/var/lib/data", "data")
    assert not request.anonymous and request.propagation == "" and not request.create_host_path


def test_named_volume_options_and_driver():
    request = parse_bind("my_vol-1.x:/data/:ro,nocopy", "flocker")
    assert (request.kind, request.source, request.destination) == ("volume", "my_vol-1.x", "/data")
    assert request.read_only and request.no_copy and request.volume_driver == "flocker"
    assert parse_bind("data:/data:rw,z").read_only is False
    assert parse_bind("data:/data:Z,cached").volume_driver == ""


def test_bind_mount_defaults_to_rprivate_and_creates_its_source():
    request = parse_bind("/srv//www/:/usr/share/nginx/html")
    assert request == MountRequest("bind", "/usr/share/nginx/html", "/srv/www", propagation="rprivate",
                                   create_host_path=True)


@pytest.mark.parametrize("propagation", ["shared", "rshared", "slave", "rslave", "private", "rprivate"])
def test_bind_propagation(propagation):
    request = parse_bind(f"/mnt:/mnt:ro,{propagation},z")
    assert request.propagation == propagation and request.read_only


def test_anonymous_volume():
    assert parse_bind("/cache") == MountRequest("volume", "/cache")
    assert parse_bind("/cache/../var/cache/").destination == "/var/cache"
    assert parse_bind("/cache", "flocker").volume_driver == "flocker"
    assert parse_bind("/cache").anonymous


def test_destination_is_normalized_like_go_path_clean():
    assert parse_bind("v1:/a/./b/../c//").destination == "/a/c"
    assert parse_bind("v1://double").destination == "/double"


@pytest.mark.parametrize("spec", ["", ":/data", "/foo:rw", "/foo:", "/foo:ro,z", "a:/b:ro:extra"])
def test_invalid_volume_specification(spec):
    assert error_of(parse_bind, spec) == f"invalid volume specification: '{spec}'"


@pytest.mark.parametrize("spec, mode", [("v1:/d:bogus", "bogus"), ("v1:/d:ro,rw", "ro,rw"),
                                        ("/h:/d:z,Z", "z,Z"), ("/h:/d:shared,slave", "shared,slave"),
                                        ("v1:/d:nocopy,nocopy", "nocopy,nocopy"), ("/h:/d:ro,", "ro,")])
def test_invalid_mode(spec, mode):
    assert error_of(parse_bind, spec) == f"invalid mode: {mode}"


def test_relative_host_paths_are_volume_names_and_refused():
    for name in ("./x", "x/y", "../etc", "~/x", "a", "-x", ".hidden", "x y"):
        assert error_of(parse_bind, f"{name}:/data") == INVALID_NAME.format(name)


def test_destination_must_be_absolute():
    assert error_of(parse_bind, "v1:data") == (
        "invalid volume specification: 'v1:data': invalid mount config for type \"volume\": "
        "invalid mount path: 'data' mount path must be absolute")
    assert error_of(parse_bind, "/h:rel/path:ro") == (
        "invalid volume specification: '/h:rel/path:ro': invalid mount config for type \"bind\": "
        "invalid mount path: 'rel/path' mount path must be absolute")
    assert "mount path must be absolute" in error_of(parse_bind, "data")


def test_destination_must_not_be_root():
    for spec, kind in (("/h:/", "bind"), ("v1:/..", "volume"), ("//", "volume")):
        assert error_of(parse_bind, spec) == (
            f"invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": "
            "invalid specification: destination can't be '/'")


def test_target_must_not_be_empty():
    assert error_of(parse_bind, "/h::ro") == (
        "invalid volume specification: '/h::ro': invalid mount config for type \"bind\": "
        "field Target must not be empty")


def test_proc_is_refused():
    assert error_of(parse_bind, "/h:/proc") == "cannot mount over /proc: the container needs it"
    assert error_of(parse_bind, "v1:/proc/sys:ro") == "cannot mount over /proc/sys: the container needs /proc"
    assert error_of(parse_bind, "/x/../proc/") == "cannot mount over /proc: the container needs it"
    assert parse_bind("/h:/process").destination == "/process"
    assert parse_bind("/sys/fs/cgroup:/sys/fs/cgroup:ro").destination == "/sys/fs/cgroup"


def test_propagation_and_nocopy_are_refused_where_docker_refuses_them():
    # Docker turns a propagation mode into BindOptions and nocopy into VolumeOptions.
    assert error_of(parse_bind, "v1:/d:shared") == (
        "invalid volume specification: 'v1:/d:shared': invalid mount config for type \"volume\": "
        "field BindOptions must not be specified")
    assert error_of(parse_bind, "/h:/d:nocopy") == (
        "invalid volume specification: '/h:/d:nocopy': invalid mount config for type \"bind\": "
        "field VolumeOptions must not be specified")


def test_errors_are_invalid_parameters():
    with pytest.raises(InvalidParameter) as caught:
        parse_bind("/foo:rw")
    assert caught.value.status == 400 and isinstance(caught.value, ValueError)


# -- HostConfig.Mounts objects ---------------------------------------------------------

def test_bind_object_as_docker_py_sends_it():
    request = mount_request({"Type": "bind", "Source": "/tmp", "Target": "/data", "ReadOnly": True,
                             "BindOptions": {"Propagation": "rslave"}})
    assert request == MountRequest("bind", "/data", "/tmp", read_only=True, propagation="rslave")
    assert not request.create_host_path  # --mount does not create a missing source


def test_bind_object_options():
    request = mount_request({"Type": "bind", "Source": "/srv/", "Target": "/srv", "Consistency": "cached",
                             "BindOptions": {"NonRecursive": True, "CreateMountpoint": True}})
    assert request.propagation == "rprivate" and request.non_recursive and request.create_host_path
    assert request.source == "/srv"


def test_bind_object_errors():
    def message(mount):
        return error_of(mount_request, mount)

    assert message({"Type": "bind", "Target": "/data"}) == (
        'invalid mount config for type "bind": field Source must not be empty')
    assert message({"Type": "bind", "Source": "/tmp", "Target": "/d",
                    "VolumeOptions": {"NoCopy": True}}) == (
        'invalid mount config for type "bind": field VolumeOptions must not be specified')
    assert message({"Type": "bind", "Source": "/tmp", "Target": "/d",
                    "BindOptions": {"Propagation": "wide"}}) == (
        'invalid mount config for type "bind": invalid propagation mode: wide')
    assert message({"Type": "bind", "Source": "tmp", "Target": "/d"}) == (
        "invalid mount config for type \"bind\": invalid mount path: 'tmp' mount path must be absolute")
    assert message({"Type": "bind", "Source": "/tmp", "Target": "d"}) == (
        "invalid mount config for type \"bind\": invalid mount path: 'd' mount path must be absolute")
    assert message({"Type": "bind", "Source": "/tmp"}) == (
        'invalid mount config for type "bind": field Target must not be empty')
    assert message({"Type": "bind", "Source": "/tmp", "Target": "/"}) == (
        "invalid mount config for type \"bind\": invalid specification: destination can't be '/'")
    assert message({"Type": "bind", "Source": "/", "Target": "/proc"}) == (
        "cannot mount over /proc: the container needs it")


def test_volume_object():
    request = mount_request({
        "Type": "volume", "Source": "db", "Target": "/var/lib/postgresql/data",
        "VolumeOptions": {"NoCopy": True, "Labels": {"tier": "db"}, "DriverConfig": {
            "Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}})
    assert request == MountRequest("volume", "/var/lib/postgresql/data", "db", volume_driver="local",
                                   volume_options={"type": "tmpfs", "device": "tmpfs"},
                                   volume_labels={"tier": "db"}, no_copy=True)
    assert request.volume_options == {"type": "tmpfs", "device": "tmpfs"}
    hash(request)  # frozen all the way down
    with pytest.raises(TypeError):
        request.volume_labels["tier"] = "web"


def test_volume_object_defaults_and_anonymous():
    assert mount_request({"Type": "volume", "Target": "/cache"}) == MountRequest("volume", "/cache")
    assert mount_request({"Type": "volume", "Source": "v1", "Target": "/c", "ReadOnly": True,
                          "VolumeOptions": {"Subpath": "sub/dir"}}).volume_subpath == "sub/dir"


def test_volume_object_errors():
    assert error_of(mount_request, {"Type": "volume", "Target": "/c", "ReadOnly": True}) == (
        'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes')
    assert error_of(mount_request, {"Type": "volume", "Source": "v1", "Target": "/c",
                                    "BindOptions": {"Propagation": "shared"}}) == (
        'invalid mount config for type "volume": field BindOptions must not be specified')
    assert error_of(mount_request, {"Type": "volume", "Source": "../x", "Target": "/c"}) == (
        INVALID_NAME.format("../x"))
    assert error_of(mount_request, {"Type": "volume", "Target": "/c",
                                    "VolumeOptions": {"Subpath": "a"}}) == (
        'invalid mount config for type "volume": must not set Subpath when using anonymous volumes')
    for subpath in ("/abs", "../up", "a/../../b"):
        assert error_of(mount_request, {"Type": "volume", "Source": "v1", "Target": "/c",
                                        "VolumeOptions": {"Subpath": subpath}}) == (
            'invalid mount config for type "volume": subpath must be a relative path within the volume')


def test_tmpfs_object():
    request = mount_request({"Type": "tmpfs", "Target": "/run/app",
                             "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770}})
    assert request == MountRequest("tmpfs", "/run/app", tmpfs_size=64 << 20, tmpfs_mode=0o1770)
    assert mount_request({"Type": "tmpfs", "Target": "/t", "ReadOnly": True,
                          "TmpfsOptions": {"Options": [["exec"]]}}).tmpfs_options == ("exec",)
    assert mount_request({"Type": "tmpfs", "Target": "/t"}).tmpfs_mode is None


def test_tmpfs_object_errors():
    assert error_of(mount_request, {"Type": "tmpfs", "Source": "tmpfs", "Target": "/t"}) == (
        'invalid mount config for type "tmpfs": field Source must not be specified')
    assert error_of(mount_request, {"Type": "tmpfs", "Target": "/t", "BindOptions": {}}) == (
        'invalid mount config for type "tmpfs": field BindOptions must not be specified')
    assert error_of(mount_request, {"Type": "tmpfs", "Target": "/t",
                                    "TmpfsOptions": {"Options": [["suid"]]}}) == (
        'invalid mount config for type "tmpfs": invalid option: suid')


def test_unknown_types_and_bad_json_types():
    assert error_of(mount_request, {"Type": "npipe", "Source": "x", "Target": "/x"}) == (
        'invalid mount config for type "npipe": mount type unknown')
    assert error_of(mount_request, {"Target": "/x"}) == 'invalid mount config for type "": mount type unknown'
    assert "not supported" in error_of(mount_request, {"Type": "image", "Source": "alpine", "Target": "/x"})
    assert "ReadOnly must be a boolean" in error_of(
        mount_request, {"Type": "bind", "Source": "/x", "Target": "/x", "ReadOnly": "yes"})
    assert "SizeBytes must be a integer" in error_of(
        mount_request, {"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"SizeBytes": "64m"}})
    assert "a mount must be an object" in error_of(mount_request, "bind")


def test_field_names_match_case_insensitively_like_go():
    request = mount_request({"type": "bind", "source": "/tmp", "target": "/d", "readonly": True,
                             "bindOptions": {"propagation": "shared"}})
    assert (request.source, request.read_only, request.propagation) == ("/tmp", True, "shared")


# -- the whole create request ----------------------------------------------------------

def test_mount_requests_from_every_source():
    config = {"Volumes": {"/var/lib/mysql": {}, "/logs": {}}}
    host_config = {
        "Binds": ["conf:/etc/app:ro", "/srv:/srv"],
        "Mounts": [{"Type": "tmpfs", "Target": "/scratch"}],
        "VolumeDriver": "flocker",
        "Tmpfs": {"/run": "size=64m"},
    }
    requests = mount_requests(config, host_config)
    assert requests == [
        MountRequest("volume", "/etc/app", "conf", read_only=True, volume_driver="flocker"),
        MountRequest("bind", "/srv", "/srv", propagation="rprivate", create_host_path=True),
        MountRequest("tmpfs", "/scratch"),
        MountRequest("volume", "/var/lib/mysql", volume_driver="flocker"),
        MountRequest("volume", "/logs", volume_driver="flocker"),
    ]
    assert not any(r.destination == "/run" for r in requests)  # HostConfig.Tmpfs is the OCI code's


def test_mount_requests_volume_driver_is_not_applied_to_mounts():
    requests = mount_requests({}, {"Mounts": [{"Type": "volume", "Source": "v1", "Target": "/v"}],
                                   "VolumeDriver": "flocker"})
    assert requests[0].volume_driver == ""


def test_mount_requests_empty_and_none():
    assert mount_requests({}, {}) == []
    assert mount_requests(None, None) == []
    assert mount_requests({"Volumes": None}, {"Binds": None, "Mounts": None, "Tmpfs": None}) == []


def test_image_volume_gives_way_to_the_users_mount():
    config = {"Volumes": {"/data": {}, "/cache/": {}, "/run": {}, "/other": {}}}
    host_config = {"Binds": ["/host/data:/data/"], "Mounts": [{"Type": "volume", "Source": "c1",
                                                                "Target": "/cache"}],
                   "Tmpfs": {"/run": ""}}
    requests = mount_requests(config, host_config)
    assert [(r.kind, r.destination, r.source) for r in requests] == [
        ("bind", "/data", "/host/data"), ("volume", "/cache", "c1"), ("volume", "/other", "")]


def test_image_volumes_repeated_once():
    requests = mount_requests({"Volumes": {"/data": {}, "/data/": {}}}, {})
    assert requests == [MountRequest("volume", "/data")]


def test_image_volume_paths_are_checked():
    assert error_of(mount_requests, {"Volumes": {"data": {}}}, {}) == (
        "invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute")
    assert error_of(mount_requests, {"Volumes": {"/": {}}}, {}) == (
        "invalid mount config for type \"volume\": invalid specification: destination can't be '/'")
    assert error_of(mount_requests, {"Volumes": {"/proc": {}}}, {}) == (
        "cannot mount over /proc: the container needs it")


@pytest.mark.parametrize("host_config, shown", [
    ({"Binds": ["/a:/data", "v1:/data/"]}, "/data"),
    ({"Binds": ["/a:/data"], "Mounts": [{"Type": "volume", "Source": "v1", "Target": "/data/"}]}, "/data/"),
    ({"Mounts": [{"Type": "tmpfs", "Target": "/t"}, {"Type": "tmpfs", "Target": "/t"}]}, "/t"),
    ({"Binds": ["/a:/run"], "Tmpfs": {"/run": "size=1m"}}, "/run"),
    ({"Mounts": [{"Type": "bind", "Source": "/a", "Target": "/run"}], "Tmpfs": {"/run/": ""}}, "/run"),
    ({"Binds": ["/cache"], "Mounts": [{"Type": "volume", "Target": "/cache"}]}, "/cache"),
])
def test_duplicate_mount_points(host_config, shown):
    assert error_of(mount_requests, {}, host_config) == f"Duplicate mount point: {shown}"


def test_mount_requests_refuse_malformed_lists():
    assert "Binds" in error_of(mount_requests, {}, {"Binds": "/a:/b"})
    assert "a bind must be a string" in error_of(mount_requests, {}, {"Binds": [{"Source": "/a"}]})
    assert "a mount must be an object" in error_of(mount_requests, {}, {"Mounts": ["/a:/b"]})


# -- --volumes-from --------------------------------------------------------------------

def test_volumes_from():
    assert volumes_from("data") == ("data", "rw")
    assert volumes_from("data:ro") == ("data", "ro")
    assert volumes_from("data:rw") == ("data", "rw")
    assert volumes_from("data:") == ("data", "rw")
    assert volumes_from("data:ro,z") == ("data", "ro")  # Docker takes a label mode and ignores it


@pytest.mark.parametrize("mode", ["x", "shared", "ro,rslave", "nocopy", "ro,rw", "ro:rw"])
def test_volumes_from_invalid_mode(mode):
    assert error_of(volumes_from, f"data:{mode}") == f"invalid mode: {mode}"


def test_volumes_from_empty():
    assert error_of(volumes_from, "") == "volumes-from specification cannot be an empty string"


# -- the --mount CSV (docker CLI opts/mount.go) ----------------------------------------

def test_mount_flag_bind():
    assert parse_mount_flag("type=bind,source=/tmp,target=/data,readonly,bind-propagation=rslave") == {
        "Type": "bind", "Source": "/tmp", "Target": "/data", "ReadOnly": True,
        "BindOptions": {"Propagation": "rslave"}}
    assert parse_mount_flag("type=bind,src=/a,dst=/b,ro=false,bind-nonrecursive") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"NonRecursive": True}}
    assert parse_mount_flag("type=bind,src=/a,destination=/b,bind-nonrecursive=0") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {}}


def test_mount_flag_volume_is_the_default_type():
    assert parse_mount_flag("source=db,target=/var/lib/db") == {
        "Type": "volume", "Source": "db", "Target": "/var/lib/db"}
    assert parse_mount_flag("target=/anon") == {"Type": "volume", "Target": "/anon"}


def test_mount_flag_volume_options():
    mount = parse_mount_flag("type=volume,src=db,dst=/d,volume-driver=local,volume-label=a=1,"
                             "volume-label=b,volume-opt=type=nfs,volume-opt=o=addr=10.0.0.1,volume-nocopy")
    assert mount == {"Type": "volume", "Source": "db", "Target": "/d", "VolumeOptions": {
        "NoCopy": True, "Labels": {"a": "1", "b": ""},
        "DriverConfig": {"Name": "local", "Options": {"type": "nfs", "o": "addr=10.0.0.1"}}}}
    # Go keeps the empty DriverConfig struct (a pointer) but drops the empty Labels map.
    assert parse_mount_flag("src=db,dst=/d,volume-nocopy=true") == {
        "Type": "volume", "Source": "db", "Target": "/d",
        "VolumeOptions": {"NoCopy": True, "DriverConfig": {}}}
    assert parse_mount_flag("src=db,dst=/d,volume-subpath=sub")["VolumeOptions"]["Subpath"] == "sub"


def test_mount_flag_tmpfs():
    assert parse_mount_flag("type=tmpfs,destination=/run,tmpfs-size=64m,tmpfs-mode=1770") == {
        "Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770}}
    assert parse_mount_flag("type=TMPFS,dst=/t,tmpfs-size=1.5GiB")["TmpfsOptions"] == {"SizeBytes": 3 << 29}


def test_mount_flag_quoting_and_case():
    assert parse_mount_flag('"type=bind","source=/a,b",target=/c')["Source"] == "/a,b"
    assert parse_mount_flag('Type=bind,Source=/a,Target=/c,ReadOnly')["ReadOnly"] is True
    assert parse_mount_flag('type=bind,src=/a,dst=/c,bind-propagation=RSHARED')["BindOptions"] == {
        "Propagation": "rshared"}


def test_mount_flag_relative_source_is_made_absolute(tmp_path):
    assert parse_mount_flag("type=bind,src=./x/,dst=/x", str(tmp_path))["Source"] == str(tmp_path / "x")
    assert parse_mount_flag("type=bind,src=.,dst=/x", str(tmp_path))["Source"] == str(tmp_path)
    assert parse_mount_flag("type=bind,src=x,dst=/x", str(tmp_path))["Source"] == "x"


@pytest.mark.parametrize("text, message", [
    ("type=bind,src=/a,dst=/b,x=y", "unexpected key 'x' in 'x=y'"),
    ("type=bind,src=/a,dst=/b,shared", "invalid field 'shared' must be a key=value pair"),
    ("type=bind,src=/a,dst=/b,,", "invalid field '' must be a key=value pair"),
    ("type=bind,src=/a", "target is required"),
    ("type=,dst=/a", "type is required"),
    ("type=bind,src=/a,dst=/b,readonly=maybe", "invalid value for readonly: maybe"),
    ("type=bind,src=/a,dst=/b,bind-nonrecursive=2", "invalid value for bind-nonrecursive: 2"),
    ("src=v,dst=/b,volume-nocopy=no", "invalid value for volume-nocopy: no"),
    ("type=tmpfs,dst=/b,tmpfs-size=lots", "invalid value for tmpfs-size: lots"),
    ("type=tmpfs,dst=/b,tmpfs-size=-1m", "invalid value for tmpfs-size: -1m"),
    ("type=tmpfs,dst=/b,tmpfs-mode=0o755", "invalid value for tmpfs-mode: 0o755"),
    ("type=tmpfs,dst=/b,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
    ("type=bind,src=/a,dst=/b,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
    ("type=bind,src=/a,dst=/b,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'bind'"),
    ("type=volume,dst=/b,bind-propagation=shared", "cannot mix 'bind-*' options with mount type 'volume'"),
    ("type=tmpfs,dst=/b,volume-driver=x", "cannot mix 'volume-*' options with mount type 'tmpfs'"),
    ("type=bind,src=/a,dst=/b,bind-recursive=maybe",
     'invalid value for bind-recursive: maybe (must be "enabled", "disabled", "writable", or "readonly")'),
    ("type=bind,src=/a,dst=/b,bind-recursive=writable",
     "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"),
    ("type=bind,src=/a,dst=/b,ro,bind-recursive=readonly",
     "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"),
    ('type=bind,src=/a"b,dst=/b', 'parse error on line 1, column 17: bare " in non-quoted-field'),
    ("", "EOF"),
])
def test_mount_flag_errors(text, message):
    assert error_of(parse_mount_flag, text) == message


def test_mount_flag_bind_recursive():
    assert parse_mount_flag("type=volume,dst=/b,bind-recursive=enabled") == {"Type": "volume", "Target": "/b"}
    assert parse_mount_flag("type=bind,src=/a,dst=/b,bind-recursive=disabled")["BindOptions"] == {
        "NonRecursive": True}
    assert parse_mount_flag("type=bind,src=/a,dst=/b,ro,bind-recursive=writable")["BindOptions"] == {
        "ReadOnlyNonRecursive": True}


def test_mount_flag_output_goes_through_the_daemon_checks():
    """What the CLI builds, the daemon side reads (and refuses where Docker's daemon does)."""
    mount = parse_mount_flag("type=bind,source=/tmp,target=/data,readonly,bind-propagation=rslave")
    assert mount_request(json.loads(json.dumps(mount))) == MountRequest(
        "bind", "/data", "/tmp", read_only=True, propagation="rslave")
    mount = parse_mount_flag("src=db,dst=/d,volume-nocopy,volume-label=a=1,volume-opt=size=1g")
    assert mount_request(mount) == MountRequest("volume", "/d", "db", no_copy=True, volume_labels={"a": "1"},
                                                volume_options={"size": "1g"})
    assert error_of(mount_request, parse_mount_flag("type=bind,target=/x")) == (
        'invalid mount config for type "bind": field Source must not be empty')
    assert error_of(mount_request, parse_mount_flag("type=tmpfs,src=x,target=/x")) == (
        'invalid mount config for type "tmpfs": field Source must not be specified')


def test_ram_in_bytes():
    assert ram_in_bytes("64m") == 64 << 20
    assert ram_in_bytes("64M") == ram_in_bytes("64MB") == ram_in_bytes("64 MiB") == 64 << 20
    assert ram_in_bytes("512") == ram_in_bytes("512b") == 512
    assert ram_in_bytes("1k") == 1024 and ram_in_bytes("2t") == 2 << 40
    assert ram_in_bytes("0.5g") == 1 << 29
    for bad in ("", "m", "1x", "1mm", "1kbb", "1 2"):
        with pytest.raises(ValueError):
            ram_in_bytes(bad)


# -- -v as the docker CLI splits it ----------------------------------------------------

def test_split_volume_flags(tmp_path):
    binds, volumes = split_volume_flags(
        ["/h:/d:ro", "named:/n", "/anon", "./rel:/r:ro", "../up:/u", "/anon", "ab", "~/x:/x"], str(tmp_path))
    assert binds == ["/h:/d:ro", "named:/n", f"{tmp_path}/rel:/r:ro", f"{tmp_path.parent}/up:/u", "~/x:/x"]
    assert volumes == {"/anon": {}, "ab": {}}


@pytest.mark.parametrize("spec, message", [
    ("", "invalid empty volume spec"),
    ("/a::/b", "invalid spec: /a::/b: empty section between colons"),
    ("/a:/b:ro:x", "invalid spec: /a:/b:ro:x: too many colons"),
])
def test_split_volume_flags_errors(spec, message):
    assert error_of(split_volume_flags, [spec]) == message


# -- the CLI's create request ----------------------------------------------------------

def cli_body(*args: str, command=create) -> tuple[dict, dict]:
    """create_body as `dockyard create ARGS` calls it, from click's parse of the arguments."""
    context = command.make_context(command.name, list(args))
    options = dict(context.params)
    image, arguments = options.pop("image"), options.pop("command")
    if command is run:
        detach, rm = options.pop("detach"), options.pop("rm")
        options.pop("detach_keys")
        options.update(detach=detach, rm=rm)
    return create_body(options, image, arguments)


def test_cli_without_mount_flags():
    config, host_config = cli_body("alpine")
    # As docker CLI 28 sends them (Volumes aside: it sends {}, which Docker's merge with the
    # image turns into null; here it is left out).
    assert "Volumes" not in config and "Mounts" not in host_config and "Tmpfs" not in host_config
    assert host_config["Binds"] is None and host_config["VolumesFrom"] is None


def test_cli_volume_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, host_config = cli_body("-v", "/srv:/srv:ro", "--volume", "data:/data", "-v", "/anon",
                                   "-v", "./site:/site", "alpine", "true")
    assert host_config["Binds"] == ["/srv:/srv:ro", "data:/data", f"{os.getcwd()}/site:/site"]
    assert config["Volumes"] == {"/anon": {}}
    assert config["Cmd"] == ["true"]


def test_cli_mount_flags():
    config, host_config = cli_body(
        "--mount", "type=bind,source=/tmp,target=/data,readonly,bind-propagation=rslave",
        "--mount", "type=tmpfs,dst=/scratch,tmpfs-size=64m", "--mount", "src=db,dst=/db", "alpine")
    assert host_config["Mounts"] == [
        {"Type": "bind", "Source": "/tmp", "Target": "/data", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave"}},
        {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 64 << 20}},
        {"Type": "volume", "Source": "db", "Target": "/db"},
    ]
    assert host_config["Binds"] is None and "Volumes" not in config


def test_cli_tmpfs_and_volumes_from():
    _, host_config = cli_body("--tmpfs", "/run:rw,size=64m,mode=1777", "--tmpfs", "/tmp",
                              "--volumes-from", "data", "--volumes-from", "logs:ro", "alpine")
    assert host_config["Tmpfs"] == {"/run": "rw,size=64m,mode=1777", "/tmp": ""}
    assert host_config["VolumesFrom"] == ["data", "logs:ro"]


def test_cli_run_takes_the_same_flags():
    config, host_config = cli_body("-d", "-v", "/a:/b", "--mount", "type=volume,dst=/v", "-v", "/c",
                                   "alpine", command=run)
    assert host_config["Binds"] == ["/a:/b"] and host_config["Mounts"] == [{"Type": "volume", "Target": "/v"}]
    assert config["Volumes"] == {"/c": {}}


def test_cli_body_is_what_the_daemon_parses():
    config, host_config = cli_body("-v", "/srv:/srv:ro,rshared", "-v", "/anon", "--mount",
                                   "type=volume,src=db,dst=/db,volume-driver=local", "--tmpfs", "/run",
                                   "alpine")
    requests = mount_requests(json.loads(json.dumps(config)), json.loads(json.dumps(host_config)))
    assert requests == [
        MountRequest("bind", "/srv", "/srv", read_only=True, propagation="rshared", create_host_path=True),
        MountRequest("volume", "/db", "db", volume_driver="local"),
        MountRequest("volume", "/anon"),
    ]


@pytest.mark.parametrize("args, flag, message", [
    (["--mount", "type=bind,src=/a,dst=/b,color=red"], "--mount", "unexpected key 'color' in 'color=red'"),
    (["-v", "/a:/b:rw:x"], "--volume", "invalid spec: /a:/b:rw:x: too many colons"),
])
def test_cli_flag_errors(args, flag, message):
    import click

    with pytest.raises(click.BadParameter) as caught:
        cli_body(*args, "alpine")
    assert caught.value.param_hint == flag and caught.value.message == message


def test_cli_sends_what_docker_cli_28_sends(tmp_path, monkeypatch):
    """The expected values are what docker 28.2.2 sent for the same flags (captured from its
    create request), the working directory aside."""
    monkeypatch.chdir(tmp_path)
    cwd = os.getcwd()
    config, host_config = cli_body("-v", "/srv:/srv:ro", "-v", "data:/data", "-v", "/anon",
                                   "-v", "./site:/site", "-v", "ab", "-v", "a:/x", "alpine", "true")
    assert config["Volumes"] == {"/anon": {}, "a:/x": {}, "ab": {}}
    assert host_config["Binds"] == ["/srv:/srv:ro", "data:/data", f"{cwd}/site:/site"]
    config, host_config = cli_body(
        "--mount", "type=bind,source=/tmp,target=/data,readonly,bind-propagation=rslave",
        "--mount", "type=tmpfs,dst=/scratch,tmpfs-size=64m,tmpfs-mode=1770", "--mount", "src=db,dst=/db",
        "--mount", "src=db2,dst=/d,volume-nocopy,volume-label=a=1,volume-opt=size=1g",
        "--mount", "type=bind,src=./rel,dst=/r,bind-nonrecursive=0", "alpine")
    assert json.dumps(host_config["Mounts"]) == json.dumps([
        {"Type": "bind", "Source": "/tmp", "Target": "/data", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave"}},
        {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 1016}},
        {"Type": "volume", "Source": "db", "Target": "/db"},
        {"Type": "volume", "Source": "db2", "Target": "/d", "VolumeOptions": {
            "NoCopy": True, "Labels": {"a": "1"}, "DriverConfig": {"Options": {"size": "1g"}}}},
        {"Type": "bind", "Source": f"{cwd}/rel", "Target": "/r", "BindOptions": {}},
    ])
    _, host_config = cli_body("--tmpfs", "/run:rw,size=64m", "--tmpfs", "/tmp", "--volumes-from", "data",
                              "--volumes-from", "logs:ro", "alpine")
    assert host_config["Tmpfs"] == {"/run": "rw,size=64m", "/tmp": ""}
    assert host_config["VolumesFrom"] == ["data", "logs:ro"]
