"""Hand-built Kafka protocol frames for the raw-socket tests (no client library in the way).

Only the few non-flexible request versions the tests need: ApiVersions v0 (and v3 header/body for the
unsupported-version case), Produce v3..v8, and record batches v2 (magic 2, CRC-32C).
"""

from __future__ import annotations

import socket
import struct
import time

import crc32c

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_VERSIONS = 18

ERR_NONE = 0
ERR_CORRUPT_MESSAGE = 2
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_MESSAGE_TOO_LARGE = 10
ERR_UNSUPPORTED_VERSION = 35
ERR_INVALID_REQUEST = 42
ERR_INVALID_RECORD = 87


# ---------------------------------------------------------------- primitive encodings

def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def nbytes(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(n: int) -> bytes:
    return uvarint((n << 1) ^ (n >> 63))


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"short read: need {n} at {self.pos}, have {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def nbytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def remaining(self):
        return len(self.data) - self.pos


# ---------------------------------------------------------------- record batches (magic 2)

def encode_record(offset_delta: int, key: bytes | None, value: bytes | None,
                  headers=(), timestamp_delta: int = 0) -> bytes:
    body = i8(0) + varint(timestamp_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        hkb = hk.encode()
        body += varint(len(hkb)) + hkb
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_timestamp: int | None = None, attributes: int = 0,
                 producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1) -> bytes:
    """records: list of (key, value) or (key, value, headers). Uncompressed unless the caller passes a
    compressed records section through attributes itself."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    encoded = b""
    for i, r in enumerate(records):
        key, value = r[0], r[1]
        headers = r[2] if len(r) > 2 else ()
        encoded += encode_record(i, key, value, headers)
    return raw_batch(encoded, len(records), base_timestamp, attributes, producer_id, producer_epoch,
                     base_sequence)


def raw_batch(section: bytes, n: int, base_timestamp: int | None = None, attributes: int = 0,
              producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1) -> bytes:
    """A batch around a records section given as bytes (compressed or not, well-formed or not) that
    declares n records; the header and CRC are valid."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    after_crc = (i16(attributes) + i32(n - 1) + i64(base_timestamp) + i64(base_timestamp)
                 + i64(producer_id) + i16(producer_epoch) + i32(base_sequence) + i32(n) + section)
    crc = crc32c.crc32c(after_crc)
    after_length = i32(-1) + i8(2) + struct.pack(">I", crc) + after_crc
    return i64(0) + i32(len(after_length)) + after_length


CRC_OFFSET = 8 + 4 + 4 + 1  # baseOffset, batchLength, partitionLeaderEpoch, magic


def corrupt_crc(batch: bytes) -> bytes:
    """Flip one bit of a record's value: the stored CRC no longer matches."""
    b = bytearray(batch)
    b[-2] ^= 0x01
    return bytes(b)


# ---------------------------------------------------------------- requests / responses

def request(api_key: int, version: int, corr: int, body: bytes, client_id: str | None = "runnel-wire-test",
            flexible_header: bool = False) -> bytes:
    header = i16(api_key) + i16(version) + i32(corr) + string(client_id)
    if flexible_header:
        header += uvarint(0)  # empty tagged fields
    payload = header + body
    return i32(len(payload)) + payload


def produce_body(topic: str, partition: int, records: bytes | None, acks: int = -1,
                 timeout_ms: int = 10000, version: int = 8) -> bytes:
    body = b""
    if version >= 3:
        body += string(None)  # transactional_id
    body += i16(acks) + i32(timeout_ms)
    body += i32(1) + string(topic) + i32(1) + i32(partition) + nbytes(records)
    return body


def parse_produce_response(data: bytes, version: int = 8, record_errors: bool = False):
    """Returns (correlation_id, [(topic, partition, error_code, base_offset, log_start_offset, error_message)]),
    with a seventh element, [(batch_index, message)], when record_errors is set."""
    r = Reader(data)
    corr = r.i32()
    out = []
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            index = r.i32()
            err = r.i16()
            base = r.i64()
            log_start = None
            msg = None
            if version >= 2:
                r.i64()  # log_append_time
            if version >= 5:
                log_start = r.i64()
            errors = []
            if version >= 8:
                for _ in range(r.i32()):
                    errors.append((r.i32(), r.string()))
                msg = r.string()
            row = (name, index, err, base, log_start, msg)
            out.append(row + (errors,) if record_errors else row)
    return corr, out


def parse_api_versions_v0(data: bytes):
    """Returns (correlation_id, error_code, {api_key: (min, max)})."""
    r = Reader(data)
    corr = r.i32()
    err = r.i16()
    apis = {}
    n = r.i32()
    for _ in range(max(n, 0)):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    return corr, err, apis


# ---------------------------------------------------------------- sockets

def connect(bootstrap: str, timeout: float = 10.0) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv_frame(s: socket.socket, timeout: float = 10.0) -> bytes | None:
    """One response frame (without its length prefix), or None if the peer closed the connection."""
    s.settimeout(timeout)
    try:
        head = recv_exact(s, 4)
        if head is None:
            return None
        (n,) = struct.unpack(">i", head)
        return recv_exact(s, n)
    except ConnectionResetError:
        return None


def wait_closed(s: socket.socket, timeout: float = 10.0) -> bool:
    """True if the peer closes (EOF or reset) within timeout, without sending anything first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not chunk:
            return True
        raise AssertionError(f"expected the connection to be closed, got {len(chunk)} bytes: {chunk[:64]!r}")
    return False


def api_versions_round_trip(bootstrap: str, corr: int = 4242, timeout: float = 10.0):
    """ApiVersions v0 on a fresh connection; returns {api_key: (min, max)}; fails if anything is off."""
    with connect(bootstrap, timeout) as s:
        s.sendall(request(API_VERSIONS, 0, corr, b""))
        data = recv_frame(s, timeout)
        assert data is not None, "broker closed a fresh connection instead of answering ApiVersions v0"
        got_corr, err, apis = parse_api_versions_v0(data)
        assert got_corr == corr, f"correlation id {got_corr} != {corr}"
        assert err == ERR_NONE, f"ApiVersions v0 error {err}"
        assert API_VERSIONS in apis and API_PRODUCE in apis, f"ApiVersions lacks core APIs: {sorted(apis)}"
        return apis


def produce(bootstrap_or_sock, topic: str, partition: int, records: bytes, version: int = 8, acks: int = -1,
            corr: int = 1, record_errors: bool = False):
    """Send one Produce request; returns the single partition result tuple (see parse_produce_response)."""
    own = isinstance(bootstrap_or_sock, str)
    s = connect(bootstrap_or_sock) if own else bootstrap_or_sock
    try:
        s.sendall(request(API_PRODUCE, version, corr, produce_body(topic, partition, records, acks=acks,
                                                                    version=version)))
        data = recv_frame(s, 15)
        assert data is not None, "broker closed the connection instead of answering Produce"
        got_corr, results = parse_produce_response(data, version, record_errors)
        assert got_corr == corr
        assert len(results) == 1, results
        return results[0]
    finally:
        if own:
            s.close()


# ---------------------------------------------------------------- admin requests past client-side checks

API_CREATE_TOPICS = 19
API_CREATE_PARTITIONS = 37


def _topic_results(data: bytes):
    """(throttle, [(name, error_code, error_message)]) of CreateTopics v4 / CreatePartitions v1."""
    r = Reader(data)
    r.i32()  # correlation id
    r.i32()  # throttle
    return [(r.string(), r.i16(), r.string()) for _ in range(r.i32())]


def create_topic_raw(bootstrap: str, name: str, partitions: int, timeout: float = 30.0):
    """CreateTopics v4 with any partition count (clients refuse large ones locally); (code, message)."""
    body = (i32(1) + string(name) + i32(partitions) + i16(1) + i32(0) + i32(0)
            + i32(int(timeout * 1000)) + i8(0))
    return _one_topic_result(bootstrap, API_CREATE_TOPICS, 4, body, timeout)


def create_partitions_raw(bootstrap: str, name: str, count: int, timeout: float = 30.0):
    """CreatePartitions v1 growing a topic to `count` partitions; (code, message)."""
    body = i32(1) + string(name) + i32(count) + i32(-1) + i32(int(timeout * 1000)) + i8(0)
    return _one_topic_result(bootstrap, API_CREATE_PARTITIONS, 1, body, timeout)


def _one_topic_result(bootstrap: str, api: int, version: int, body: bytes, timeout: float):
    """Sends one single-topic admin request; its (code, message)."""
    with connect(bootstrap, timeout) as s:
        s.sendall(request(api, version, 1, body))
        data = recv_frame(s, timeout)
    assert data is not None, f"api {api} was not answered"
    (_, code, msg), = _topic_results(data)
    return code, msg
