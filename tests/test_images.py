"""Images end to end, for each storage driver: bootstrap, list, inspect, history, tag,
remove, import, save and load, with layers shared and nothing half-made left behind."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from conftest import dockyard_cli
from dockyard.client import APIError

pytestmark = pytest.mark.root


@pytest.fixture(params=["vfs", "overlay"])
def daemon(request, make_daemon):
    return make_daemon(request.param, "--storage-driver", request.param).start()


def cli(daemon, *args, **kwargs):
    return dockyard_cli(*args, host=daemon.host, **kwargs)


def docker(daemon, *args, input=None):
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg")}
    return subprocess.run(["docker", *args], capture_output=True, env=env, timeout=120, input=input)


def bootstrap(daemon, tag="busybox:latest"):
    result = cli(daemon, "image", "bootstrap", "busybox", "--tag", tag)
    return result.stdout.strip()


def rootfs_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def layer_metadata(daemon) -> list[str]:
    return sorted(p.name for p in (daemon.data_root / "image" / "layers").glob("*.json"))


def driver_layers(daemon) -> list[str]:
    driver = daemon.data_root / "storage" / daemon.root.name
    return sorted(p.name for p in driver.iterdir() if len(p.name) == 64)


def blobs(daemon) -> list[str]:
    return sorted(p.name for p in (daemon.data_root / "image" / "content" / "blobs" / "sha256").iterdir())


def test_bootstrap_gives_a_real_busybox_image(daemon):
    image_id = bootstrap(daemon)
    assert image_id.startswith("sha256:")
    image = daemon.client().get_json("/images/busybox/json")
    assert image["Id"] == image_id and image["RepoTags"] == ["busybox:latest"]
    assert image["Config"]["Cmd"] == ["sh"]
    assert image["Os"] == "linux" and len(image["RootFS"]["Layers"]) == 1
    assert image["GraphDriver"]["Name"] == daemon.root.name
    assert image["Size"] > 1_000_000  # the static binary is in it
    history = daemon.client().get_json("/images/busybox:latest/history")
    assert history[0]["Id"] == image_id and history[0]["Comment"].startswith("bootstrapped from")


def test_docker_cli_lists_inspects_tags_and_removes(daemon):
    image_id = bootstrap(daemon)
    listed = docker(daemon, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.decode().split() == ["busybox:latest", image_id[7:19]]
    assert docker(daemon, "tag", "busybox", "localhost:5000/team/box:1.0").returncode == 0
    inspected = json.loads(docker(daemon, "image", "inspect", "localhost:5000/team/box:1.0").stdout)
    assert inspected[0]["Id"] == image_id
    assert sorted(inspected[0]["RepoTags"]) == ["busybox:latest", "localhost:5000/team/box:1.0"]
    history = docker(daemon, "history", "busybox")
    assert history.returncode == 0 and image_id[7:19] in history.stdout.decode()

    by_id = docker(daemon, "rmi", image_id[7:19])
    assert by_id.returncode == 1
    assert (f"unable to delete {image_id[7:19]} (must be forced) - image is referenced in multiple "
            "repositories") in by_id.stderr.decode()
    untag = docker(daemon, "rmi", "localhost:5000/team/box:1.0")
    assert untag.stdout.decode().strip() == "Untagged: localhost:5000/team/box:1.0"
    removed = docker(daemon, "rmi", "busybox")
    assert removed.stdout.decode().split("\n")[:2] == ["Untagged: busybox:latest", f"Deleted: {image_id}"]
    missing = docker(daemon, "image", "inspect", "busybox")
    assert missing.returncode == 1 and "No such image: busybox:latest" in missing.stderr.decode()
    assert layer_metadata(daemon) == [] and driver_layers(daemon) == [] and blobs(daemon) == []


def test_identical_layers_are_stored_once_and_removed_with_their_last_user(daemon):
    layer = rootfs_tar({"hello.txt": b"hello\n"})
    client = daemon.client()
    ids = []
    for name in ("one", "two"):
        response = client.request("POST", "/images/create", {"fromSrc": "-", "repo": name, "tag": "1"},
                                  body=io.BytesIO(layer), stream=True)
        ids.append(list(response.iter_json())[-1]["status"])
    assert ids[0] != ids[1]  # different created times, different configs
    assert len(layer_metadata(daemon)) == 1 and len(driver_layers(daemon)) == 1
    client.request("DELETE", "/images/one:1").json()
    assert len(layer_metadata(daemon)) == 1  # two:1 still uses it
    client.request("DELETE", "/images/two:1").json()
    assert layer_metadata(daemon) == [] and driver_layers(daemon) == []


def test_import_applies_changes_and_message(daemon):
    layer = rootfs_tar({"app/run": b"#!/bin/sh\necho hi\n"})
    result = docker(daemon, "import", "-c", "ENV MODE=prod", "-c", 'ENTRYPOINT ["/app/run"]',
                    "-c", "EXPOSE 8080", "-c", "LABEL team=core", "-m", "first cut", "-", "app:v1",
                    input=layer)
    assert result.returncode == 0, result.stderr
    image = daemon.client().get_json("/images/app:v1/json")
    assert image["Config"]["Env"] == ["MODE=prod"]
    assert image["Config"]["Entrypoint"] == ["/app/run"]
    assert image["Config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert image["Config"]["Labels"] == {"team": "core"}
    assert image["Comment"] == "first cut"
    bad = docker(daemon, "import", "-c", "FROM scratch", "-", "bad:1", input=layer)
    assert bad.returncode == 1 and "FROM is not a valid change command" in bad.stderr.decode()


def test_import_from_a_loopback_url(daemon):
    layer = rootfs_tar({"served.txt": b"over http\n"})

    class Serve(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(layer)))
            self.end_headers()
            self.wfile.write(layer)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/rootfs.tar"
        result = cli(daemon, "import", url, "served:1")
        assert result.stdout.strip().startswith("sha256:")
        history = daemon.client().get_json("/images/served:1/history")
        assert history[0]["Comment"] == f"Imported from {url}"
    finally:
        server.shutdown()


def test_save_and_load_round_trip_keeps_the_image_id(daemon, make_daemon, short_tmp):
    image_id = bootstrap(daemon)
    archive = short_tmp / "busybox.tar"
    saved = docker(daemon, "save", "-o", str(archive), "busybox")
    assert saved.returncode == 0, saved.stderr
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
    assert {"index.json", "oci-layout", "manifest.json"} <= set(names)
    assert manifest[0]["RepoTags"] == ["busybox:latest"]

    other = make_daemon("second", "--storage-driver", daemon.root.name).start()
    loaded = docker(other, "load", "-i", str(archive))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.decode().strip() == "Loaded image: busybox:latest"
    assert other.client().get_json("/images/busybox/json")["Id"] == image_id


def test_load_reads_gzip_and_oci_layouts(daemon, make_daemon, short_tmp):
    bootstrap(daemon)
    response = daemon.client().request("GET", "/images/get", {"names": "busybox", "format": "oci"},
                                       stream=True)
    oci_tar = response.read()
    with tarfile.open(fileobj=io.BytesIO(oci_tar)) as tar:
        assert "manifest.json" not in tar.getnames() and "index.json" in tar.getnames()
    import gzip

    other = make_daemon("second", "--storage-driver", daemon.root.name).start()
    loaded = docker(other, "load", input=gzip.compress(oci_tar))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.decode().strip() == "Loaded image: busybox:latest"


def test_a_layer_that_lies_about_its_digest_loads_nothing(daemon, short_tmp):
    good = rootfs_tar({"a": b"genuine"})
    evil = rootfs_tar({"a": b"tampered"})
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(good).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in ((config_name, config), ("layer/layer.tar", evil),
                           ("manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["liar:1"],
                                                          "Layers": ["layer/layer.tar"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = docker(daemon, "load", input=archive.getvalue())
    assert result.returncode == 1
    assert f"expected {diff_id}" in result.stderr.decode()
    assert daemon.client().get_json("/images/json") == []
    assert layer_metadata(daemon) == [] and driver_layers(daemon) == []
    assert list((daemon.data_root / "image" / "tmp").iterdir()) == []


def test_legacy_docker_archive_with_symlinked_layers_loads(daemon, short_tmp):
    """The pre-25 docker save layout: <id>/layer.tar, <id>.json, symlinks between layers."""
    import hashlib

    base = rootfs_tar({"etc/base": b"base\n"})
    top = rootfs_tar({"etc/top": b"top\n"})
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in (base, base, top)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_id = hashlib.sha256(config).hexdigest()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        def add(name, data=None, link=None):
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        add("aaa/layer.tar", base)
        add("bbb/layer.tar", link="../aaa/layer.tar")
        add("ccc/layer.tar", top)
        add(f"{config_id}.json", config)
        add("manifest.json", json.dumps([{"Config": f"{config_id}.json", "RepoTags": ["old:style"],
                                          "Layers": ["aaa/layer.tar", "bbb/layer.tar",
                                                     "ccc/layer.tar"]}]).encode())
    result = docker(daemon, "load", input=archive.getvalue())
    assert result.returncode == 0, result.stderr
    image = daemon.client().get_json("/images/old:style/json")
    assert image["Id"] == "sha256:" + config_id and image["RootFS"]["Layers"] == diff_ids


def test_skopeo_reads_what_we_save_and_we_load_what_skopeo_writes(daemon, make_daemon, short_tmp):
    image_id = bootstrap(daemon)
    image = daemon.client().get_json("/images/busybox/json")
    archive = short_tmp / "saved.tar"
    assert docker(daemon, "save", "-o", str(archive), "busybox").returncode == 0
    inspected = subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"],
                               capture_output=True, text=True, timeout=120)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Os"] == "linux"
    other = make_daemon("second", "--storage-driver", daemon.root.name).start()

    # the same archive read as an OCI layout: skopeo copies it byte for byte, the id survives
    layout = short_tmp / "as-oci"
    copied = subprocess.run(["skopeo", "copy", f"oci-archive:{archive}:latest",
                             f"oci:{layout}:busybox:latest"], capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    layout_tar = short_tmp / "as-oci.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(layout_tar), "."], check=True)
    loaded = docker(other, "load", "-i", str(layout_tar))
    assert loaded.returncode == 0, loaded.stderr
    assert other.client().get_json("/images/busybox/json")["Id"] == image_id

    # converted from docker-archive, skopeo rewrites the config (a new id), the layers stay
    converted = short_tmp / "converted"
    copied = subprocess.run(["skopeo", "copy", f"docker-archive:{archive}", f"oci:{converted}:conv:1"],
                            capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    converted_tar = short_tmp / "converted.tar"
    subprocess.run(["tar", "-C", str(converted), "-cf", str(converted_tar), "."], check=True)
    assert docker(other, "load", "-i", str(converted_tar)).returncode == 0
    listed = {i["Id"]: i for i in other.client().get_json("/images/json")}
    assert len(listed) == 2
    new_id = next(i for i in listed if i != image_id)
    converted_image = other.client().get_json(f"/images/{new_id}/json")
    assert converted_image["RootFS"]["Layers"] == image["RootFS"]["Layers"]
    assert converted_image["Config"]["Cmd"] == ["sh"]


def test_umoci_built_layout_loads(daemon, short_tmp):
    layout = short_tmp / "umoci"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:app"], check=True)
    rootfs = short_tmp / "rootfs"
    (rootfs / "data").mkdir(parents=True)
    (rootfs / "data" / "note").write_text("from umoci\n")
    subprocess.run(["umoci", "insert", "--image", f"{layout}:app", str(rootfs / "data"), "/data"],
                   check=True, capture_output=True)
    subprocess.run(["umoci", "config", "--image", f"{layout}:app", "--config.cmd", "cat"], check=True)
    layout_tar = short_tmp / "umoci.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(layout_tar), "."], check=True)
    loaded = docker(daemon, "load", "-i", str(layout_tar))
    assert loaded.returncode == 0, loaded.stderr
    # umoci names the image by tag only ("app"): Docker loads such images untagged
    assert loaded.stdout.decode().startswith("Loaded image ID: sha256:")
    listed = daemon.client().get_json("/images/json")
    assert len(listed) == 1 and listed[0]["RepoTags"] == []


def test_prune_removes_dangling_images_only(daemon):
    client = daemon.client()
    for name, content in (("keep", b"1"), (None, b"2")):
        params = {"fromSrc": "-", "repo": name, "tag": "1" if name else None}
        client.request("POST", "/images/create", params, body=io.BytesIO(rootfs_tar({"f": content})),
                       stream=True).read()
    report = client.request("POST", "/images/prune").json()
    assert len(report["ImagesDeleted"]) == 1 and report["SpaceReclaimed"] == 1
    assert [i["RepoTags"] for i in client.get_json("/images/json")] == [["keep:1"]]
    everything = docker(daemon, "image", "prune", "-a", "-f")
    assert everything.returncode == 0 and "Total reclaimed space" in everything.stdout.decode()
    assert client.get_json("/images/json") == []


def test_image_events_are_emitted(daemon):
    since = f"{time.time() - 1:.9f}"
    bootstrap(daemon)
    client = daemon.client()
    client.request("POST", "/images/busybox/tag", {"repo": "again", "tag": "1"}).read()
    client.request("DELETE", "/images/again:1").read()
    events = client.request("GET", "/events", {"since": since, "until": f"{time.time():.9f}",
                                               "filters": '{"type":{"image":true}}'}, stream=True)
    actions = [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in events.iter_json()]
    assert actions == [("import", "busybox:latest"), ("tag", "again:1"), ("untag", "again:1")]


def test_system_df_counts_shared_layers_once(daemon):
    bootstrap(daemon)
    daemon.client().request("POST", "/images/busybox/tag", {"repo": "copy", "tag": "1"}).read()
    usage = daemon.client().get_json("/system/df")
    image = usage["Images"][0]
    assert usage["LayersSize"] == image["Size"] > 0
    df = docker(daemon, "system", "df")
    assert df.returncode == 0, df.stderr


def test_unknown_images_and_bad_names_get_dockers_messages(daemon):
    client = daemon.client()
    for path, status, message in (("/images/nope/json", 404, "No such image: nope:latest"),
                                  ("/images/Bad:Name/json", 404, "No such image: Bad:Name")):
        with pytest.raises(APIError) as error:
            client.get_json(path)
        assert (error.value.status, error.value.message) == (status, message)
    bootstrap(daemon)
    with pytest.raises(APIError) as error:
        client.request("POST", "/images/busybox/tag", {"repo": "UPPER"})
    assert error.value.status == 400 and "must be lowercase" in error.value.message


def test_a_load_killed_half_way_leaves_nothing_after_restart(daemon, short_tmp):
    big = rootfs_tar({f"blob{i}": os.urandom(8 << 20) for i in range(12)})  # ~96 MiB layer
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(big).hexdigest()
    config = json.dumps({"os": "linux", "architecture": "amd64",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    archive = short_tmp / "big.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("c.json", config), ("l/layer.tar", big),
                           ("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["big:1"],
                                                          "Layers": ["l/layer.tar"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.root / "cfg")}
    loader = subprocess.Popen(["docker", "load", "-i", str(archive)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    staging = daemon.data_root / "image" / "tmp"
    while not any(staging.rglob("layer.tar")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # let it get into the layer
    daemon.process.send_signal(signal.SIGKILL)
    daemon.process.wait()
    loader.wait(30)
    daemon.start()
    assert daemon.client().get_json("/images/json") == []
    assert layer_metadata(daemon) == [] and driver_layers(daemon) == [] and blobs(daemon) == []
    assert list(staging.iterdir()) == []
    assert list((daemon.data_root / "image" / "content" / "ingest").iterdir()) == []
