"""The content store: only verified bytes become blobs, interrupted writes vanish, and
collection spares what an operation in progress holds."""

from __future__ import annotations

import pytest
from dockyard.images.content import ContentStore, DigestMismatch, sha256_digest


def test_put_is_content_addressed_and_idempotent(tmp_path):
    store = ContentStore(tmp_path)
    digest = store.put(b"hello")
    assert digest == sha256_digest(b"hello")
    assert store.put(b"hello") == digest
    assert store.read(digest) == b"hello" and store.size(digest) == 5


def test_bytes_that_do_not_match_their_digest_are_never_stored(tmp_path):
    store = ContentStore(tmp_path)
    claimed = sha256_digest(b"the real thing")
    with pytest.raises(DigestMismatch, match=f"expected {claimed}"):
        store.put_stream([b"an impostor"], expected=claimed)
    assert not store.exists(claimed)
    assert store.digests() == [] and list(store.ingest_dir.iterdir()) == []


def test_a_size_mismatch_is_refused_too(tmp_path):
    store = ContentStore(tmp_path)
    digest = sha256_digest(b"abc")
    with store.writer(digest, expected_size=4) as writer:
        writer.write(b"abc")
        with pytest.raises(DigestMismatch, match="has 3 bytes, expected 4"):
            writer.commit()
    assert not store.exists(digest)


def test_malformed_digests_never_become_paths(tmp_path):
    store = ContentStore(tmp_path)
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64):
        with pytest.raises(ValueError, match="malformed digest"):
            store.path(bad)


def test_recover_removes_interrupted_writes(tmp_path):
    store = ContentStore(tmp_path)
    writer = store.writer()
    writer.write(b"half a blob")  # the daemon dies here: no commit, no abort
    assert ContentStore(tmp_path).recover() == 1
    assert list(store.ingest_dir.iterdir()) == []


def test_collect_keeps_blobs_in_use_and_leased(tmp_path):
    store = ContentStore(tmp_path)
    kept = store.put(b"in use")
    doomed = store.put(b"garbage")
    with store.lease() as lease:
        leased = store.put(b"being loaded", lease=lease)
        freed = store.collect({kept})
        assert store.exists(leased) and store.exists(kept) and not store.exists(doomed)
        assert freed == len(b"garbage")
    store.collect({kept})
    assert not store.exists(leased)
