"""Malformed and hostile input over raw sockets. After every case the broker must still be alive and answer
ApiVersions on a fresh connection.

The expected outcomes are what Apache Kafka 4.3 does (checked with RUNNEL_TEST_TARGET=kafka):
  * framing it cannot accept (size < header, size < 0 or > socket.request.max.bytes), an unknown API key,
    an unsupported version of any API but ApiVersions, Produce v0-v2, a request body that does not parse:
    the connection is closed, nothing is answered;
  * ApiVersions at a version it does not know: answered in the v0 format with UNSUPPORTED_VERSION (35) and an
    api list (Kafka lists only ApiVersions itself), the connection stays usable;
  * a well-formed Produce request with a bad batch: a per-partition error, the connection stays open;
  * an acks=0 Produce that fails: no response (acks=0), the connection is closed so the client notices.
"""

from __future__ import annotations

import random
import struct

import pytest

import wire
from helpers import create_topic, topic_partitions, unique_topic, wait_until, watermarks

MAX_REQUEST = 100 * 1024 * 1024  # socket.request.max.bytes default


def assert_serving(b):
    assert b.alive(), f"broker process died (exit code {b.proc.returncode})"
    wire.api_versions_round_trip(b.bootstrap)


def send_and_expect_close(b, data: bytes, what: str, timeout: float = 10.0):
    with wire.connect(b.bootstrap) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: that is a close too
        assert wire.wait_closed(s, timeout), f"{what}: connection still open after {timeout}s"
    assert_serving(b)


@pytest.fixture(scope="module")
def ready_topic(broker):
    """A single-partition topic with max.message.bytes=1024, created through CreateTopics."""
    t = unique_topic("bad-input")
    create_topic(broker.bootstrap, t, 1, {"max.message.bytes": "1024"})
    return t


def test_api_versions_round_trip_works(broker):
    apis = wire.api_versions_round_trip(broker.bootstrap)
    assert apis[wire.API_VERSIONS][0] == 0 and apis[wire.API_VERSIONS][1] >= 3
    assert apis[wire.API_PRODUCE][1] >= 7, "zstd needs Produce v7+"


def test_pipelined_requests_answered_in_order(broker):
    with wire.connect(broker.bootstrap) as s:
        s.sendall(b"".join(wire.request(wire.API_VERSIONS, 0, 1000 + i, b"") for i in range(25)))
        corrs = []
        for _ in range(25):
            data = wire.recv_frame(s)
            assert data is not None, "connection closed mid-pipeline"
            corrs.append(struct.unpack(">i", data[:4])[0])
    assert corrs == [1000 + i for i in range(25)]


def test_random_bytes(broker):
    rng = random.Random(1234)
    for i in range(8):
        n = rng.randint(1, 4096)
        blob = bytes(rng.getrandbits(8) for _ in range(n))
        (size,) = struct.unpack(">i", blob[:4].ljust(4, b"\0"))
        with wire.connect(broker.bootstrap) as s:
            try:
                s.sendall(blob)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if n >= 4 and (size < 0 or size > MAX_REQUEST or 0 <= size <= n - 4):
                # an impossible size, or a complete frame of garbage: the broker must hang up
                assert wire.wait_closed(s, 10), f"blob {i} (size field {size}): connection still open"
        assert_serving(broker)


def test_framed_random_payload_closes(broker):
    rng = random.Random(4321)
    for i in range(8):
        n = rng.randint(1, 512)
        body = bytes(rng.getrandbits(8) for _ in range(n))
        send_and_expect_close(broker, wire.i32(n) + body, f"framed random payload {i}")


@pytest.mark.parametrize("api_key,version", [(0, 8), (1, 11), (3, 12), (18, 3), (19, 7)])
def test_valid_header_garbage_body_closes(broker, api_key, version):
    rng = random.Random(api_key * 100 + version)
    body = bytes(rng.getrandbits(8) for _ in range(300))
    flexible = (api_key, version) in ((3, 12), (18, 3), (19, 7))
    send_and_expect_close(broker, wire.request(api_key, version, 5, body, flexible_header=flexible),
                          f"api {api_key} v{version} with a garbage body")


def test_truncated_produce_body_closes(broker, ready_topic):
    body = wire.produce_body(ready_topic, 0, wire.record_batch([(b"k", b"v")]))
    send_and_expect_close(broker, wire.request(wire.API_PRODUCE, 8, 5, body[:-10]), "truncated Produce body")
    assert watermarks(broker.bootstrap, ready_topic)[1] == 0


def test_frame_over_max_request_size_closes(broker):
    # only the size prefix is sent: the broker must refuse on the size alone, without waiting for 100 MiB
    send_and_expect_close(broker, wire.i32(MAX_REQUEST + 1), "frame of 100 MiB + 1")
    send_and_expect_close(broker, wire.i32(0x7FFFFFFF), "frame of 2 GiB - 1")


def test_negative_frame_size_closes(broker):
    send_and_expect_close(broker, wire.i32(-1), "frame size -1")
    send_and_expect_close(broker, wire.i32(-2147483648), "frame size i32::MIN")


def test_configured_socket_request_max_bytes(start_broker):
    b = start_broker({"socket.request.max.bytes": 65536})
    send_and_expect_close(b, wire.i32(65537) + b"\0" * 16, "frame over a configured 64 KiB limit")
    # a normal request still fits
    wire.api_versions_round_trip(b.bootstrap)


@pytest.mark.parametrize("size", [0, 1, 3, 7])
def test_frame_shorter_than_request_header_closes(broker, size):
    # request header v1 needs at least 10 bytes: api_key, api_version, correlation_id, client_id length
    header = struct.pack(">hhih", 18, 0, 1, -1)
    send_and_expect_close(broker, wire.i32(size) + header[:size], f"{size}-byte frame")


@pytest.mark.parametrize("api_key", [1000, 32767, -1])
def test_unknown_api_key_closes(broker, api_key):
    send_and_expect_close(broker, wire.request(api_key, 0, 1, b""), f"unknown api key {api_key}")


def test_unsupported_version_of_metadata_closes(broker):
    send_and_expect_close(broker, wire.request(wire.API_METADATA, 99, 1, b""), "Metadata v99")


@pytest.mark.parametrize("version", [127, 5])
def test_api_versions_unsupported_version_answered_in_v0(broker, version):
    # what a newer client sends: request header v2 (tagged fields) and an ApiVersions v3+ body
    body = wire.compact_string("runnel-test") + wire.compact_string("1.0") + wire.uvarint(0)
    with wire.connect(broker.bootstrap) as s:
        s.sendall(wire.request(wire.API_VERSIONS, version, 77, body, flexible_header=True))
        data = wire.recv_frame(s)
        assert data is not None, f"ApiVersions v{version}: connection closed instead of a v0 answer"
        corr, err, apis = wire.parse_api_versions_v0(data)
        assert corr == 77
        assert err == wire.ERR_UNSUPPORTED_VERSION, f"error {err}, want 35 UNSUPPORTED_VERSION"
        assert wire.API_VERSIONS in apis, f"the api list must name ApiVersions' own range, got {apis}"
        lo, hi = apis[wire.API_VERSIONS]
        assert lo == 0 and 3 <= hi < version
        # the client retries at a version from that list, on the same connection
        s.sendall(wire.request(wire.API_VERSIONS, 0, 78, b""))
        data = wire.recv_frame(s)
        assert data is not None, "connection closed after the UNSUPPORTED_VERSION answer"
        corr, err, apis = wire.parse_api_versions_v0(data)
        assert (corr, err) == (78, 0) and wire.API_PRODUCE in apis
    assert_serving(broker)


def test_produce_valid_batch_by_hand(broker, ready_topic):
    """The hand-built batch is right: a control for the bad-batch cases below."""
    lo, hi = watermarks(broker.bootstrap, ready_topic)
    name, part, err, base, log_start, _ = wire.produce(
        broker.bootstrap, ready_topic, 0, wire.record_batch([(b"k1", b"v1", [("h", b"x")]), (None, b"v2")]))
    assert (name, part, err) == (ready_topic, 0, 0)
    assert base == hi
    assert log_start == lo
    assert watermarks(broker.bootstrap, ready_topic)[1] == hi + 2


def test_produce_corrupt_crc(broker, ready_topic):
    hi = watermarks(broker.bootstrap, ready_topic)[1]
    good = wire.record_batch([(b"key", b"value")])
    with wire.connect(broker.bootstrap) as s:
        _, _, err, base, _, _ = wire.produce(s, ready_topic, 0, wire.corrupt_crc(good), corr=11)
        assert err == wire.ERR_CORRUPT_MESSAGE, f"error {err}, want 2 CORRUPT_MESSAGE"
        assert base == -1
        # the connection stays usable and nothing was appended
        _, _, err, base, _, _ = wire.produce(s, ready_topic, 0, good, corr=12)
        assert err == 0 and base == hi
    assert watermarks(broker.bootstrap, ready_topic)[1] == hi + 1
    assert_serving(broker)


@pytest.mark.parametrize("case,want", [
    ("batch_length_too_small", wire.ERR_CORRUPT_MESSAGE),
    ("batch_length_too_big", wire.ERR_INVALID_RECORD),
    ("magic_1", wire.ERR_INVALID_RECORD),
    ("garbage_records", wire.ERR_INVALID_RECORD),
    ("empty_records", wire.ERR_INVALID_RECORD),
])
def test_produce_malformed_batch(broker, ready_topic, case, want):
    good = wire.record_batch([(b"k", b"v")])
    bad = bytearray(good)
    if case == "batch_length_too_small":
        struct.pack_into(">i", bad, 8, 20)
    elif case == "batch_length_too_big":
        struct.pack_into(">i", bad, 8, len(good) - 12 + 50)
    elif case == "magic_1":
        bad[16] = 1
    elif case == "garbage_records":
        bad = bytearray(b"\x01" * 100)
    elif case == "empty_records":
        bad = bytearray()
    hi = watermarks(broker.bootstrap, ready_topic)[1]
    with wire.connect(broker.bootstrap) as s:
        _, _, err, base, _, _ = wire.produce(s, ready_topic, 0, bytes(bad), corr=21)
        assert err == want, f"{case}: error {err}, want {want}"
        _, _, err, base, _, _ = wire.produce(s, ready_topic, 0, good, corr=22)
        assert err == 0 and base == hi, "connection unusable or offsets moved after a rejected batch"
    assert_serving(broker)


def test_produce_record_over_topic_max_message_bytes(broker, ready_topic):
    hi = watermarks(broker.bootstrap, ready_topic)[1]
    with wire.connect(broker.bootstrap) as s:
        _, _, err, base, _, _ = wire.produce(s, ready_topic, 0, wire.record_batch([(None, b"x" * 2000)]), corr=31)
        assert err == wire.ERR_MESSAGE_TOO_LARGE, f"error {err}, want 10 MESSAGE_TOO_LARGE"
        # just under the limit is fine (1024 bytes for the whole batch: 61-byte header + the record)
        _, _, err, base, _, _ = wire.produce(s, ready_topic, 0, wire.record_batch([(None, b"y" * 900)]), corr=32)
        assert err == 0 and base == hi
    assert watermarks(broker.bootstrap, ready_topic)[1] == hi + 1
    assert_serving(broker)


def test_produce_record_over_broker_message_max_bytes(start_broker):
    b = start_broker({"message.max.bytes": 4096})
    t = unique_topic("broker-limit")
    create_topic(b.bootstrap, t, 1)
    _, _, err, _, _, _ = wire.produce(b.bootstrap, t, 0, wire.record_batch([(None, b"z" * 5000)]))
    assert err == wire.ERR_MESSAGE_TOO_LARGE, f"error {err}, want 10 MESSAGE_TOO_LARGE"
    _, _, err, base, _, _ = wire.produce(b.bootstrap, t, 0, wire.record_batch([(None, b"z" * 3000)]))
    assert (err, base) == (0, 0)
    assert_serving(b)


def test_produce_missing_topic_auto_create_disabled(start_broker):
    b = start_broker({"auto.create.topics.enable": "false"})
    t = unique_topic("missing")
    _, _, err, base, _, _ = wire.produce(b.bootstrap, t, 0, wire.record_batch([(b"k", b"v")]))
    assert err == wire.ERR_UNKNOWN_TOPIC_OR_PARTITION, f"error {err}, want 3 UNKNOWN_TOPIC_OR_PARTITION"
    assert topic_partitions(b.bootstrap, t) is None, "the topic was created"
    assert_serving(b)


def test_produce_never_auto_creates(broker):
    # auto.create.topics.enable=true (the default) applies to Metadata only: Produce to a missing topic fails
    t = unique_topic("no-create-on-produce")
    _, _, err, _, _, _ = wire.produce(broker.bootstrap, t, 0, wire.record_batch([(b"k", b"v")]))
    assert err == wire.ERR_UNKNOWN_TOPIC_OR_PARTITION
    assert topic_partitions(broker.bootstrap, t) is None
    assert_serving(broker)


def test_produce_missing_partition(broker, ready_topic):
    _, part, err, _, _, _ = wire.produce(broker.bootstrap, ready_topic, 5, wire.record_batch([(b"k", b"v")]))
    assert (part, err) == (5, wire.ERR_UNKNOWN_TOPIC_OR_PARTITION)
    assert_serving(broker)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_produce_v0_to_v2_rejected(broker, ready_topic, version):
    """Kafka 4 advertises Produce from v0 but refuses v0-v2: it closes the connection. An answer with
    UNSUPPORTED_VERSION (35) is accepted too; either way nothing is stored."""
    hi = watermarks(broker.bootstrap, ready_topic)[1]
    with wire.connect(broker.bootstrap) as s:
        s.sendall(wire.request(wire.API_PRODUCE, version, 41,
                               wire.produce_body(ready_topic, 0, wire.record_batch([(b"k", b"v")]), version=version)))
        data = wire.recv_frame(s)
        if data is not None:
            corr, results = wire.parse_produce_response(data, version)
            assert corr == 41 and results[0][2] == wire.ERR_UNSUPPORTED_VERSION, results
    assert watermarks(broker.bootstrap, ready_topic)[1] == hi
    assert_serving(broker)


def test_produce_acks0_sends_no_response(broker, ready_topic):
    hi = watermarks(broker.bootstrap, ready_topic)[1]
    with wire.connect(broker.bootstrap) as s:
        s.sendall(wire.request(wire.API_PRODUCE, 8, 51,
                               wire.produce_body(ready_topic, 0, wire.record_batch([(b"a", b"b")]), acks=0)))
        s.sendall(wire.request(wire.API_VERSIONS, 0, 52, b""))
        data = wire.recv_frame(s)
        assert data is not None
        assert struct.unpack(">i", data[:4])[0] == 52, "acks=0 Produce was answered"
    wait_until(lambda: watermarks(broker.bootstrap, ready_topic)[1] == hi + 1, 10, "the acks=0 record to land")


def test_produce_acks0_failure_closes_connection(broker, ready_topic):
    hi = watermarks(broker.bootstrap, ready_topic)[1]
    bad = wire.corrupt_crc(wire.record_batch([(b"a", b"b")]))
    with wire.connect(broker.bootstrap) as s:
        s.sendall(wire.request(wire.API_PRODUCE, 8, 61, wire.produce_body(ready_topic, 0, bad, acks=0)))
        assert wire.wait_closed(s, 10), "a failed acks=0 Produce must close the connection"
    assert watermarks(broker.bootstrap, ready_topic)[1] == hi
    assert_serving(broker)


def test_many_bad_connections_then_clients_still_work(broker, ready_topic):
    """A burst of half-open and garbage connections does not wedge the broker."""
    socks = []
    try:
        for i in range(50):
            s = wire.connect(broker.bootstrap)
            s.sendall(wire.i32(1000) + b"\0" * (i % 7))  # incomplete frames, left open
            socks.append(s)
        assert_serving(broker)
        _, _, err, _, _, _ = wire.produce(broker.bootstrap, ready_topic, 0, wire.record_batch([(b"k", b"v")]))
        assert err == 0
    finally:
        for s in socks:
            s.close()
    assert_serving(broker)
