"""Image references: Docker's normalization, its exact error messages, and printing back what was parsed.

The expected values are what github.com/distribution/reference (the parser of the docker CLI and
daemon) gives for the same input.
"""

from __future__ import annotations

import pytest
from dockyard.formats.reference import (
    InvalidReference,
    Reference,
    is_full_image_id,
    parse_any_reference,
    parse_docker_ref,
    parse_normalized,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

HEX64 = "86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
HEX128 = HEX64 * 2
SHA256 = f"sha256:{HEX64}"
SHA512 = f"sha512:{HEX128}"

# text, normalized string, familiar string
VALID = [
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox", "docker.io/library/busybox", "busybox"),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("docker.io/library/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("foo/bar", "docker.io/foo/bar", "foo/bar"),
    ("docker.io/foo/bar", "docker.io/foo/bar", "foo/bar"),
    ("index.docker.io/foo/bar:1", "docker.io/foo/bar:1", "foo/bar:1"),
    ("library/a/b", "docker.io/library/a/b", "library/a/b"),
    ("other/library", "docker.io/other/library", "other/library"),
    ("localhost/foo", "localhost/foo", "localhost/foo"),
    ("localhost:5000/foo/bar:tag", "localhost:5000/foo/bar:tag", "localhost:5000/foo/bar:tag"),
    ("127.0.0.1:5000/x", "127.0.0.1:5000/x", "127.0.0.1:5000/x"),
    ("[::1]:5000/x", "[::1]:5000/x", "[::1]:5000/x"),
    ("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
     "[fc00:1:2:3:4:5:6:7]:5000/library/debian"),
    ("[::1]/x", "[::1]/x", "[::1]/x"),
    ("example.com/private/moonbase", "example.com/private/moonbase", "example.com/private/moonbase"),
    ("example.com:8000/a/b:v2", "example.com:8000/a/b:v2", "example.com:8000/a/b:v2"),
    # docker.io with a port is some other registry: no "library/" and nothing stripped.
    ("docker.io:443/busybox", "docker.io:443/busybox", "docker.io:443/busybox"),
    # An uppercase first component cannot be a Docker Hub namespace, so it is a host.
    ("Foo/bar", "Foo/bar", "Foo/bar"),
    ("LOCALDOMAIN/library/debian", "LOCALDOMAIN/library/debian", "LOCALDOMAIN/library/debian"),
    # A single component is always an official image, even where it looks like a host.
    ("localhost", "docker.io/library/localhost", "localhost"),
    ("example.com", "docker.io/library/example.com", "example.com"),
    ("127.0.0.1:5000", "docker.io/library/127.0.0.1:5000", "127.0.0.1:5000"),
    ("ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base", "ubuntu-12.04-base"),
    ("dock__er/d---b.c_d", "docker.io/dock__er/d---b.c_d", "dock__er/d---b.c_d"),
    ("a/b/c/d/e", "docker.io/a/b/c/d/e", "a/b/c/d/e"),
    ("busybox:Latest", "docker.io/library/busybox:Latest", "busybox:Latest"),
    ("busybox:_x.y-Z", "docker.io/library/busybox:_x.y-Z", "busybox:_x.y-Z"),
    ("b:" + "t" * 128, "docker.io/library/b:" + "t" * 128, "b:" + "t" * 128),
    ("a" * 247, "docker.io/library/" + "a" * 247, "a" * 247),
    ("localhost/" + "a" * 255, "localhost/" + "a" * 255, "localhost/" + "a" * 255),
    # A 64-hex name is fine where a domain or namespace makes clear it is no image ID.
    ("docker.io/" + HEX64, "docker.io/library/" + HEX64, HEX64),
    (f"busybox@{SHA256}", f"docker.io/library/busybox@{SHA256}", f"busybox@{SHA256}"),
    (f"busybox:1.36@{SHA256}", f"docker.io/library/busybox:1.36@{SHA256}", f"busybox:1.36@{SHA256}"),
    (f"host:5000/a/b@{SHA256}", f"host:5000/a/b@{SHA256}", f"host:5000/a/b@{SHA256}"),
    (f"foo/bar@{SHA512}", f"docker.io/foo/bar@{SHA512}", f"foo/bar@{SHA512}"),
    # Deliberately unlike Docker, which refuses algorithms it cannot compute ("unsupported digest
    # algorithm"): any algorithm the OCI grammar allows is accepted.
    (f"busybox@sha256+b64:{HEX64}", f"docker.io/library/busybox@sha256+b64:{HEX64}",
     f"busybox@sha256+b64:{HEX64}"),
    (f"busybox@md5:{HEX64[:32]}", f"docker.io/library/busybox@md5:{HEX64[:32]}", f"busybox@md5:{HEX64[:32]}"),
]

# text, Docker's message
INVALID = [
    ("", "invalid reference format"),
    ("/", "invalid reference format"),
    ("Foo", "invalid reference format: repository name (library/Foo) must be lowercase"),
    ("foo/Bar", "invalid reference format: repository name (foo/Bar) must be lowercase"),
    ("docker.io/foo/Bar:tag", "invalid reference format: repository name (foo/Bar) must be lowercase"),
    ("localhost/Foo", "invalid reference format: repository name (Foo) must be lowercase"),
    (f"busybox@SHA256:{HEX64}",
     "invalid reference format: repository name (library/busybox@SHA256) must be lowercase"),
    # Taken as a host for its capital, refused as one for its underscores: the grammar, not the split, fails.
    ("F__o/bar", "repository name must be lowercase"),
    ("foo:", "invalid reference format"),
    (":tag", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("docker/", "invalid reference format"),
    ("-foo", "invalid reference format"),
    ("-docker/docker", "invalid reference format"),
    ("docker-/docker", "invalid reference format"),
    ("dock..er/docker", "invalid reference format"),
    ("dock_.er/docker", "invalid reference format"),
    ("____/____", "invalid reference format"),
    ("busybox\n", "invalid reference format"),
    ("busÿbox", "invalid reference format"),
    ("https://github.com/docker/docker", "invalid reference format"),
    ("[fc00::1]", "invalid reference format"),
    ("[0]/x", "invalid reference format"),
    ("[fc00::1]:5000", "invalid reference format"),
    ("fc00::1:5000/debian", "invalid reference format"),
    ("[fe80::1%eth0]:5000/debian", "invalid reference format"),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid reference format"),
    ("a-.com/x", "invalid reference format"),
    ("a.com:/x", "invalid reference format"),
    ("a.com:http/x", "invalid reference format"),
    ("busybox:-x", "invalid reference format"),
    ("busybox:.x", "invalid reference format"),
    ("b:" + "t" * 129, "invalid reference format"),
    (HEX64, f"invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings"),
    ("a" * 248, "repository name must not be more than 255 characters"),
    ("foo/" + "a" * 252, "repository name must not be more than 255 characters"),
    ("localhost/" + "a" * 256, "repository name must not be more than 255 characters"),
    ("busybox@sha256:", "invalid reference format"),
    ("busybox@sha256:abc", "invalid reference format"),
    (f"busybox@{SHA256[:-1]}", "invalid checksum digest length"),
    (f"busybox@{SHA256}0", "invalid checksum digest length"),
    (f"busybox@sha512:{HEX64}", "invalid checksum digest length"),
    (f"busybox@sha256:{HEX64.upper()}", "invalid checksum digest format"),
    (f"busybox:1@Md5:{HEX64}", "invalid checksum digest format"),
]


@pytest.mark.parametrize(("text", "normalized", "familiar"), VALID)
def test_parse_normalized(text, normalized, familiar):
    reference = parse_normalized(text)
    assert str(reference) == normalized
    assert reference.familiar() == familiar


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_parse_normalized_refuses_with_dockers_message(text, message):
    with pytest.raises(InvalidReference) as raised:
        parse_normalized(text)
    assert str(raised.value) == message


def test_invalid_reference_is_a_value_error():
    with pytest.raises(ValueError):
        parse_normalized("Foo")


@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", Reference("docker.io", "library/busybox")),
    ("localhost:5000/foo/bar:tag", Reference("localhost:5000", "foo/bar", "tag")),
    ("[::1]:5000/x", Reference("[::1]:5000", "x")),
    (f"busybox:1@{SHA256}", Reference("docker.io", "library/busybox", "1", SHA256)),
    ("Foo/bar", Reference("Foo", "bar")),
    # A first component with a "." that is no valid host stays in the path, with no domain at all.
    ("foo_bar.com/x", Reference("", "foo_bar.com/x")),
])
def test_parse_normalized_fields(text, expected):
    assert parse_normalized(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("localhost/foo", "localhost/foo:latest"),
    (f"busybox@{SHA256}", f"docker.io/library/busybox@{SHA256}"),
    # Both given: the digest alone decides, and the tag is dropped.
    (f"busybox:1.36@{SHA256}", f"docker.io/library/busybox@{SHA256}"),
    (f"host:5000/a/b:v1@{SHA256}", f"host:5000/a/b@{SHA256}"),
])
def test_parse_docker_ref(text, expected):
    assert str(parse_docker_ref(text)) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("Foo", "invalid reference format: repository name (library/Foo) must be lowercase"),
    (HEX64, f"invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings"),
])
def test_parse_docker_ref_refuses_like_parse_normalized(text, message):
    with pytest.raises(InvalidReference) as raised:
        parse_docker_ref(text)
    assert str(raised.value) == message


@pytest.mark.parametrize(("text", "expected"), [
    (HEX64, SHA256),
    (SHA256, SHA256),
    (SHA512, SHA512),
    (f"sha384:{HEX64}{HEX64[:32]}", f"sha384:{HEX64}{HEX64[:32]}"),
    # Not a digest Docker could compute, so it is read as a name with a tag.
    (f"sha256:{HEX64[:-1]}", Reference("docker.io", "library/sha256", HEX64[:-1])),
    (f"md5:{HEX64[:32]}", Reference("docker.io", "library/md5", HEX64[:32])),
    ("busybox", Reference("docker.io", "library/busybox")),
    (f"busybox@{SHA256}", Reference("docker.io", "library/busybox", None, SHA256)),
])
def test_parse_any_reference(text, expected):
    assert parse_any_reference(text) == expected


def test_parse_any_reference_refuses_what_parse_normalized_refuses():
    with pytest.raises(InvalidReference, match="^invalid reference format$"):
        parse_any_reference("-foo")


@pytest.mark.parametrize(("text", "expected"), [
    (HEX64, True),
    (SHA256, True),
    (HEX64.upper(), False),
    (HEX64[:-1], False),
    (f"{HEX64}0", False),
    (f"sha256:{HEX64[:12]}", False),
    (HEX64[:12], False),
    (SHA512, False),
    (f"sha256:sha256:{HEX64}", False),
    (f"{HEX64}\n", False),
    ("", False),
])
def test_is_full_image_id(text, expected):
    assert is_full_image_id(text) is expected


@pytest.mark.parametrize(("reference", "name", "familiar_name"), [
    (Reference("docker.io", "library/busybox"), "docker.io/library/busybox", "busybox"),
    (Reference("docker.io", "foo/bar"), "docker.io/foo/bar", "foo/bar"),
    (Reference("docker.io", "library/a/b"), "docker.io/library/a/b", "library/a/b"),
    (Reference("host:5000", "library/busybox"), "host:5000/library/busybox", "host:5000/library/busybox"),
    (Reference("localhost", "a", "1", SHA256), "localhost/a", "localhost/a"),
    (Reference("", "foo_bar.com/x"), "foo_bar.com/x", "foo_bar.com/x"),
])
def test_names(reference, name, familiar_name):
    assert reference.name == name
    assert reference.familiar_name == familiar_name


@pytest.mark.parametrize(("reference", "text", "familiar"), [
    (Reference("docker.io", "library/busybox", "latest"), "docker.io/library/busybox:latest",
     "busybox:latest"),
    (Reference("host:5000", "a/b", None, SHA256), f"host:5000/a/b@{SHA256}", f"host:5000/a/b@{SHA256}"),
    (Reference("docker.io", "foo/bar", "v1", SHA256), f"docker.io/foo/bar:v1@{SHA256}",
     f"foo/bar:v1@{SHA256}"),
])
def test_strings(reference, text, familiar):
    assert str(reference) == text
    assert reference.familiar() == familiar


def test_with_tag_keeps_the_digest():
    reference = parse_normalized(f"busybox@{SHA256}").with_tag("1.36")
    assert str(reference) == f"docker.io/library/busybox:1.36@{SHA256}"
    assert parse_normalized("busybox:1").with_tag("2").tag == "2"


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a/b", "t" * 129, "é"])
def test_with_tag_refuses_a_bad_tag(tag):
    with pytest.raises(InvalidReference, match="^invalid tag format$"):
        parse_normalized("busybox").with_tag(tag)


@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1", "docker.io/library/busybox:1"),
    (f"busybox@{SHA256}", f"docker.io/library/busybox@{SHA256}"),
    (f"busybox:1@{SHA256}", f"docker.io/library/busybox:1@{SHA256}"),
])
def test_with_default_tag(text, expected):
    assert str(parse_normalized(text).with_default_tag()) == expected


def test_references_are_frozen_and_hashable():
    reference = parse_normalized("busybox")
    with pytest.raises(AttributeError):
        reference.tag = "x"  # type: ignore[misc]
    assert {reference, parse_normalized("docker.io/library/busybox")} == {reference}


@pytest.mark.parametrize(("fields", "message"), [
    (("docker.io", "Busybox"), "repository name must be lowercase"),
    (("docker.io", "a//b"), "invalid reference format"),
    (("docker.io", ""), "invalid reference format"),
    (("a_b.com", "x"), "invalid reference format"),
    (("[::1]:port", "x"), "invalid reference format"),
    (("docker.io", "a" * 256), "repository name must not be more than 255 characters"),
    (("docker.io", "a", ""), "invalid tag format"),
    (("docker.io", "a", None, "sha256"), "invalid digest format"),
    (("docker.io", "a", None, f"sha256:{HEX64[:40]}"), "invalid checksum digest length"),
    (("docker.io", "a", None, f"SHA256:{HEX64}"), "invalid checksum digest format"),
])
def test_constructor_checks_the_grammar(fields, message):
    with pytest.raises(InvalidReference) as raised:
        Reference(*fields)
    assert str(raised.value) == message


# Strategies for references in normal form: what `parse_normalized` can return for some input.
# Built from plain text pieces rather than `from_regex`, which is several times slower for these.
_HEX = "0123456789abcdef"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _joined(pieces: st.SearchStrategy[str], separators: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`piece (separator piece)*`, as the grammar writes path components and digest algorithms."""
    return st.tuples(pieces, st.lists(st.tuples(separators, pieces), max_size=3)).map(
        lambda drawn: drawn[0] + "".join(separator + piece for separator, piece in drawn[1])
    )


_PATH_COMPONENTS = _joined(
    st.text(_LOWER + "0123456789", min_size=1, max_size=8),
    st.sampled_from([".", "_", "__", "-", "--", "---"]),
)
_LABELS = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?", fullmatch=True)
_PORTS = st.integers(0, 65535).map(lambda port: f":{port}")
_HOSTS = st.one_of(
    st.lists(_LABELS, min_size=2, max_size=4).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda octets: ".".join(map(str, octets))),
    # The grammar allows "[0]", but without a ":" Docker does not take it for a host.
    st.from_regex(r"\[[a-fA-F0-9:]+\]", fullmatch=True).filter(lambda host: ":" in host),
)
_DOMAINS = st.one_of(
    st.just("docker.io"),
    st.just("localhost"),
    st.tuples(_HOSTS, _PORTS | st.just("")).map("".join),
    st.tuples(_LABELS, _PORTS).map("".join),
    # Without "." or ":" a label is a host only when it is "localhost" or has a capital.
    _LABELS.filter(lambda label: label.lower() != label),
).filter(lambda domain: domain != "index.docker.io")
_TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
_OTHER_ALGORITHMS = _joined(
    st.tuples(st.sampled_from(_LOWER), st.text(_LOWER + "0123456789", max_size=6)).map("".join),
    st.sampled_from("-_+."),
).filter(lambda algorithm: algorithm not in {"sha256", "sha384", "sha512"})
_DIGESTS = st.one_of(
    st.text(_HEX, min_size=64, max_size=64).map(lambda hex_: f"sha256:{hex_}"),
    st.text(_HEX, min_size=128, max_size=128).map(lambda hex_: f"sha512:{hex_}"),
    st.tuples(_OTHER_ALGORITHMS, st.text(_HEX + "ABCDEF", min_size=32, max_size=80)).map(":".join),
)


@st.composite
def normalized_references(draw) -> Reference:
    domain = draw(_DOMAINS)
    path = "/".join(draw(st.lists(_PATH_COMPONENTS, min_size=1, max_size=4)))
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    assume(len(path) <= 255)
    return Reference(domain, path, draw(st.none() | _TAGS), draw(st.none() | _DIGESTS))


@settings(max_examples=300)
@given(normalized_references())
def test_round_trip(reference):
    assert parse_normalized(str(reference)) == reference


@settings(max_examples=300)
@given(normalized_references())
def test_parse_docker_ref_keeps_the_digest_else_the_tag_else_latest(reference):
    parsed = parse_docker_ref(str(reference))
    if reference.digest is not None:
        assert (parsed.tag, parsed.digest) == (None, reference.digest)
    else:
        assert (parsed.tag, parsed.digest) == (reference.tag or "latest", None)
    assert parsed.name == reference.name


@settings(max_examples=300)
@given(normalized_references())
def test_familiar_form_round_trips_unless_a_hub_namespace_looks_like_a_host(reference):
    # "docker.io/a.b/c" is shown as "a.b/c", which reads back as the host "a.b": Docker has the same
    # ambiguity, so only Docker Hub namespaces that cannot be taken for a host round-trip.
    namespace = reference.path.partition("/")[0]
    looks_like_a_host = "." in namespace or ":" in namespace or namespace == "localhost"
    assume(reference.domain != "docker.io" or not looks_like_a_host)
    # A familiar name of 64 hex digits is refused as an image ID.
    assume(not is_full_image_id(reference.familiar_name))
    assert parse_normalized(reference.familiar()) == reference


@settings(max_examples=500)
@given(st.text(st.characters(codec="utf-8"), max_size=40) | st.text("abAB09._-/:@[]", max_size=40))
def test_any_text_parses_to_its_normal_form_or_fails_with_invalid_reference(text):
    try:
        reference = parse_normalized(text)
    except InvalidReference:
        return
    assert parse_normalized(str(reference)) == reference
