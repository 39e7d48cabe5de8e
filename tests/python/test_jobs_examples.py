"""The example jobs of `runnel jobs` (processor/src/jobs) end to end: each one run with `runnel jobs run` over
input produced here with confluent-kafka, its output read with read_committed and checked against what a
brute-force computation in Python over the same input says it must be. Then records that cannot be read
(dead-letter topic, or a failing job naming the record), `runnel jobs status|list` and the CLI's errors,
Prometheus metrics while a job runs, and a job hosted in the broker (`serve --job`).

The remote jobs are Kafka clients, so those tests hold against any Kafka-compatible broker; the ones marked
runnel_only need Runnel itself (`serve --job`).
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from collections import Counter, defaultdict

import pytest

from conftest import RUNNEL_BIN
from helpers import create_topic, unique_topic, wait_until
from job_helpers import (HostingBroker, JobProcess, assert_totals_only_grow, end_offsets, expected_word_counts,
                         free_port, last_values, own_broker, read_output, read_raw, scrape, tweet)

PARTS = 2
INTERVAL_MS = 100
IDLE_ROUNDS = 5
JOB_TIMEOUT = 60

ENV = {"RUST_LOG": "warn", "PATH": "/usr/bin:/bin"}


# ------------------------------------------------------------------------------------------------- helpers

def produce(bootstrap: str, topic: str, records) -> list[tuple[int, int]]:
    """Produces (partition, key, value) records in order; returns each one's (partition, offset)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    where: list[tuple[int, int] | None] = [None] * len(records)
    errors = []

    def delivered(i):
        def cb(err, msg):
            if err is not None:
                errors.append(err)
            else:
                where[i] = (msg.partition(), msg.offset())
        return cb

    for i, (part, key, value) in enumerate(records):
        p.produce(topic, value, key=key, partition=part, on_delivery=delivered(i))
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(30) == 0, "producer could not deliver the input"
    assert not errors, errors
    assert all(w is not None for w in where)
    return where  # type: ignore[return-value]


def job_name(job: str) -> str:
    return unique_topic(f"ex-{job}")


def run_job(bootstrap, tmp_path, job, inp, out, *extra, name=None, timeout=JOB_TIMEOUT) -> JobProcess:
    """`runnel jobs run JOB` to the end of its input (--stop-when-idle); fails unless it exits 0."""
    name = name or job_name(job)
    p = JobProcess(tmp_path, bootstrap, job, inp, out, "--name", name, "--interval-ms", str(INTERVAL_MS),
                   "--stop-when-idle", str(IDLE_ROUNDS), *extra).start()
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.stop()
        raise AssertionError(f"job {job} did not stop within {timeout}s of running out of input:\n{p.tail()}")
    assert rc == 0, f"job {job} exited with {rc}:\n{p.tail()}"
    p.name = name
    return p


def runnel(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUNNEL_BIN), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def count_records(out: dict) -> int:
    return sum(len(v) for v in out.values())


def assert_source_order_kept(out: dict, origin) -> None:
    """In every output partition, the records that came from one input partition are in that partition's
    order. origin(record) -> (input partition, input offset)."""
    for p, recs in out.items():
        last: dict[int, int] = {}
        for r in recs:
            ip, off = origin(r)
            assert off > last.get(ip, -1), \
                f"output partition {p}: the record from input {ip}@{off} comes after input {ip}@{last[ip]}"
            last[ip] = off


# ------------------------------------------------------------------- the jobs' logic, brute force in Python

HAPPY = {"happy", "love", "great", "good", "fun", "yay", "awesome"}
SAD = {"sad", "hate", "bad", "awful", "angry", "ugh", "terrible"}


def py_hashtags(text: str) -> list[str]:
    """processor/src/jobs/hashtags.rs: hashtags()."""
    out = []
    for w in text.split():
        if len(w.encode()) > 1 and w.startswith("#"):
            while w and not w[-1].isalnum():
                w = w[:-1]
            w = w.lower()
            if len(w.encode()) > 1:
                out.append(w)
    return out


def py_mood_score(text: str) -> int:
    """processor/src/jobs/mood.rs: score()."""
    s = 0
    for w in text.split():
        i, j = 0, len(w)
        while i < j and not w[i].isalnum():
            i += 1
        while j > i and not w[j - 1].isalnum():
            j -= 1
        w = w[i:j].lower()
        s += (w in HAPPY) - (w in SAD)
    return s


def py_nearest(centroids, text: str):
    """processor/src/jobs/kmeans.rs: parse_point() then nearest(); None when the point is skipped."""
    try:
        point = [float(x.strip()) for x in text.split(",")]
    except ValueError:
        return None
    best = None
    for i, c in enumerate(centroids):
        if len(c) != len(point):
            continue
        d = sum((a - b) ** 2 for a, b in zip(c, point))
        if best is None or d < best[1]:
            best = (i, d)
    return None if best is None else best[0]


# ------------------------------------------------------------------------------------- 1. the example jobs

def test_grep_writes_exactly_the_matching_records_unchanged_in_order(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("grep-in"), unique_topic("grep-out")
    create_topic(b, inp, PARTS)
    rnd = random.Random(1)
    records = []
    for i in range(2000):
        kind = rnd.random()
        if kind < 0.25:
            value = f"{i} ERROR disk {rnd.randint(0, 99)} full".encode()
        elif kind < 0.35:
            value = f"{i} ERR almost".encode()  # a prefix of the pattern: no match
        elif kind < 0.40:
            value = f"{i} xERRORx".encode() + bytes([0xff, 0x00, 0xfe])  # bytes, not text: matched as bytes
        elif kind < 0.42:
            value = f"ERROR{i}".encode()  # the pattern at the start
        else:
            value = f"{i} info all good".encode()
        records.append((i % PARTS, f"k{rnd.randint(0, 30)}".encode(), value))
    where = produce(b, inp, records)
    run_job(b, tmp_path, "grep", inp, out, "-o", "pattern=ERROR")

    got = read_raw(b, out, PARTS)
    expected = [(k, v) for (_, k, v) in records if b"ERROR" in v]
    assert 500 < len(expected) < 1500
    got_pairs = [(k, v) for recs in got.values() for (k, v, _) in recs]
    assert Counter(got_pairs) == Counter(expected), \
        f"grep wrote {len(got_pairs)} records, {len(expected)} match (first missing: " \
        f"{next(iter(Counter(expected) - Counter(got_pairs)), None)}, first extra: " \
        f"{next(iter(Counter(got_pairs) - Counter(expected)), None)})"
    # Values are unique: each tells where it came from.
    origin_of = {v: where[i] for i, (_, _, v) in enumerate(records)}
    assert_source_order_kept(got, lambda r: origin_of[r[1]])
    # A key's records all go to one output partition.
    parts_of_key = defaultdict(set)
    for p, recs in got.items():
        for k, _, _ in recs:
            parts_of_key[k].add(p)
    assert all(len(ps) == 1 for ps in parts_of_key.values()), parts_of_key


def test_grep_keeps_a_null_key_null(broker, tmp_path):
    """"key and value unchanged": Kafka tells a null key from an empty one (and partitions them differently)."""
    b = broker.bootstrap
    inp, out = unique_topic("grepnull-in"), unique_topic("grepnull-out")
    create_topic(b, inp, PARTS)
    produce(b, inp, [(0, None, b"hit with a null key"), (1, b"", b"hit with an empty key"),
                     (0, b"k", b"hit with key k"), (1, None, b"miss")])
    run_job(b, tmp_path, "grep", inp, out, "-o", "pattern=hit")
    got = sorted(((k, v) for recs in read_raw(b, out, PARTS).values() for (k, v, _) in recs), key=lambda r: r[1])
    assert got == [(None, b"hit with a null key"), (b"", b"hit with an empty key"), (b"k", b"hit with key k")]


def test_hashtags_per_batch_counts_add_up_to_the_totals(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("tags-in"), unique_topic("tags-out")
    create_topic(b, inp, PARTS)
    values = [tweet(i) for i in range(1500)]
    odd = ["#Tag1! and #TAG1, #tag1...", "# #! a#b #x", "no tags here", "#Café, #café #cafe",
           "#multi#hash #end-", "##double #9lives"]
    values += [json.dumps({"user": "odd", "text": t}).encode() for t in odd]
    values.append(json.dumps({"text": "#nouser #nouser"}).encode())  # user defaults to ""
    records = [(i % PARTS, None, v) for i, v in enumerate(values)]
    produce(b, inp, records)
    run_job(b, tmp_path, "hashtags", inp, out)

    expected = Counter()
    for v in values:
        expected.update(py_hashtags(json.loads(v)["text"]))
    got = read_output(b, out, PARTS)
    sums: Counter = Counter()
    for recs in got.values():
        for k, v in recs:
            n = int(v)
            assert n > 0, f"a batch count of {k!r} is {n}"
            sums[k] += n
    assert dict(sums) == dict(expected), \
        f"per-batch counts add up wrong: {dict((t, (sums[t], expected[t])) for t in set(sums) | set(expected) if sums[t] != expected[t])}"
    # Each tag is counted in one task, so its counts all land in one output partition.
    for tag in expected:
        assert sum(1 for recs in got.values() if any(k == tag for k, _ in recs)) == 1, tag


def test_hashtags_window_last_counts_are_the_totals_when_the_window_holds_everything(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("tagsw-in"), unique_topic("tagsw-out")
    create_topic(b, inp, PARTS)
    values = [tweet(i) for i in range(1000, 2200)]
    produce(b, inp, [(i % PARTS, None, v) for i, v in enumerate(values)])
    # A 60 s window sliding every batch holds the whole short run: the latest count of a tag is its total.
    run_job(b, tmp_path, "hashtags-window", inp, out, "-o", "window.ms=60000", "-o", f"slide.ms={INTERVAL_MS}")

    expected = Counter()
    for v in values:
        expected.update(py_hashtags(json.loads(v)["text"]))
    got = read_output(b, out, PARTS)
    last = {k: int(v) for k, v in last_values(got).items()}
    assert last == dict(expected)


def test_mood_last_value_per_user_is_the_score_and_tweet_count(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("mood-in"), unique_topic("mood-out")
    create_topic(b, inp, PARTS)
    rnd = random.Random(3)
    words = sorted(HAPPY) + sorted(SAD) + ["the", "day", "was", "and", "i", "#happy", "LOVE!!", "sad...",
                                            "(awful)", "good-ish", "ungood", "hate,", "Yay"]
    values = []
    for i in range(1500):
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 7)))
        values.append(json.dumps({"user": f"user{rnd.randint(0, 40)}", "text": text}).encode())
    produce(b, inp, [(i % PARTS, None, v) for i, v in enumerate(values)])
    run_job(b, tmp_path, "mood", inp, out)

    expected: dict[str, dict] = {}
    for v in values:
        t = json.loads(v)
        m = expected.setdefault(t["user"], {"score": 0, "tweets": 0})
        m["score"] += py_mood_score(t["text"])
        m["tweets"] += 1
    assert any(m["score"] > 0 for m in expected.values()) and any(m["score"] < 0 for m in expected.values())
    got = read_output(b, out, PARTS)
    last = {k: json.loads(v) for k, v in last_values(got).items()}
    assert last == expected
    # A user's tweet count only grows from one emitted value to the next.
    for recs in got.values():
        seen: dict[str, int] = {}
        for k, v in recs:
            n = json.loads(v)["tweets"]
            assert n > seen.get(k, 0), f"tweets of {k} went from {seen.get(k)} to {n}"
            seen[k] = n


def test_join_emits_one_record_per_keyed_input_with_the_table_value_or_null(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("join-in"), unique_topic("join-out")
    create_topic(b, inp, PARTS)
    table_path = tmp_path / "table.csv"
    table_path.write_text("k0,zero\n k1 , one \nk2,two,with comma\nnot a row\nk3,\nk4,first\nk4,second\n"
                          "k5,five\n\nk999,never used\n")
    table = {"k0": "zero", "k1": "one", "k2": "two,with comma", "k3": "", "k4": "second", "k5": "five",
             "k999": "never used"}
    rnd = random.Random(4)
    records = []
    for i in range(1500):
        key = None if i % 10 == 9 else f"k{rnd.randint(0, 12)}".encode()
        records.append((i % PARTS, key, f"value {i}".encode()))
    where = produce(b, inp, records)
    run_job(b, tmp_path, "join", inp, out, "-o", f"table={table_path}")

    expected = Counter()
    for _, k, v in records:
        if k is not None:
            expected[(k.decode(), v.decode(), table.get(k.decode()))] += 1
    got = read_output(b, out, PARTS)
    got_triples = Counter()
    for recs in got.values():
        for k, v in recs:
            doc = json.loads(v)
            assert set(doc) == {"value", "joined"}, doc
            got_triples[(k, doc["value"], doc["joined"])] += 1
    assert got_triples == expected, \
        f"missing: {list((expected - got_triples).items())[:5]}, extra: {list((got_triples - expected).items())[:5]}"
    origin_of = {v.decode(): where[i] for i, (_, _, v) in enumerate(records)}
    assert_source_order_kept(got, lambda r: origin_of[json.loads(r[1])["value"]])


def test_join_with_a_table_loaded_from_a_topic_at_start(broker, tmp_path):
    """table.topic: the table is the latest value of every key of a topic when the job starts (null deletes)."""
    b = broker.bootstrap
    inp, out, tab = unique_topic("joint-in"), unique_topic("joint-out"), unique_topic("joint-table")
    create_topic(b, inp, PARTS)
    create_topic(b, tab, 3)
    produce(b, tab, [(0, b"u1", b"alice"), (1, b"u2", b"bob"), (2, b"u3", b"carol"),
                     (0, b"u1", b"alice v2"), (1, b"u2", None)])
    records = [(i % PARTS, f"u{i % 5}".encode(), f"event {i}".encode()) for i in range(200)]
    produce(b, inp, records)
    run_job(b, tmp_path, "join", inp, out, "-o", f"table.topic={tab}")
    table = {"u1": "alice v2", "u3": "carol"}
    expected = Counter((k.decode(), v.decode(), table.get(k.decode())) for _, k, v in records)
    got = Counter()
    for recs in read_output(b, out, PARTS).values():
        for k, v in recs:
            doc = json.loads(v)
            got[(k, doc["value"], doc["joined"])] += 1
    assert got == expected


def test_kmeans_assigns_each_point_to_the_nearest_centroid_and_skips_malformed_ones(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("km-in"), unique_topic("km-out")
    create_topic(b, inp, PARTS)
    model = tmp_path / "model.json"
    centroids = [[0, 0], [10, 10]]
    model.write_text(json.dumps(centroids))
    rnd = random.Random(5)
    values = []
    for i in range(1500):
        cx = rnd.choice([0, 10, 5])
        values.append(f"{cx + rnd.gauss(0, 3):.3f},{cx + rnd.gauss(0, 3):.3f}")
    # Ties go to the first centroid; spaces around numbers are fine; the rest is skipped (not a number,
    # a missing coordinate, three dimensions against a two-dimensional model, empty).
    values += ["5,5", " 1.5 , 2 ", "-3e1,4", "abc", "1,", "1;2", "1,2,3", "", ",", "x,1", "12"]
    rnd.shuffle(values)
    records = [(i % PARTS, f"p{i}".encode(), v.encode()) for i, v in enumerate(values)]
    where = produce(b, inp, records)
    run_job(b, tmp_path, "kmeans", inp, out, "-o", f"model={model}")

    expected = Counter()
    for v in values:
        n = py_nearest(centroids, v)
        if n is not None:
            expected[(str(n), v)] += 1
    assert 1400 < sum(expected.values()) < len(values)
    got = read_raw(b, out, PARTS)
    got_pairs = Counter((k.decode(), v.decode()) for recs in got.values() for (k, v, _) in recs)
    assert got_pairs == expected, \
        f"missing: {list((expected - got_pairs).items())[:5]}, extra: {list((got_pairs - expected).items())[:5]}"
    # Same text can occur twice: order is checked on the unique values only.
    counts = Counter(values)
    origin_of = {v: where[i] for i, (_, _, v) in enumerate(records) if counts[v.decode()] == 1}
    assert_source_order_kept({p: [r for r in recs if r[1] in origin_of] for p, recs in got.items()},
                             lambda r: origin_of[r[1]])


def test_wordcount_last_value_per_word_is_its_count(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("wc-in"), unique_topic("wc-out")
    create_topic(b, inp, PARTS)
    rnd = random.Random(6)
    vocab = [f"w{i}" for i in range(120)] + ["Word", "word", "WORD", "a-b", "x.y"]
    values = []
    for _ in range(2000):
        words = [rnd.choice(vocab) for _ in range(rnd.randint(0, 6))]
        values.append(rnd.choice([" ", "  ", "\t", " \n "]).join(words).encode())
    produce(b, inp, [(i % PARTS, None, v) for i, v in enumerate(values)])
    run_job(b, tmp_path, "wordcount", inp, out)

    got = read_output(b, out, PARTS)
    assert_totals_only_grow(got)
    totals = {k: int(v) for k, v in last_values(got).items()}
    assert totals == expected_word_counts(values)


# ------------------------------------------------------------------------------------------- 2. bad input

def dead_letters(bootstrap: str, dlq: str) -> list:
    return [r for recs in read_raw(bootstrap, dlq, PARTS).values() for r in recs]


def header(headers, name: str) -> str | None:
    vals = [v for k, v in headers if k == name]
    assert len(vals) == 1, f"header {name}: {headers}"
    return vals[0].decode()


def test_wordcount_sends_a_record_that_is_not_utf8_to_the_dead_letter_topic(broker, tmp_path):
    b = broker.bootstrap
    inp, out, dlq = unique_topic("wcbad-in"), unique_topic("wcbad-out"), unique_topic("wcbad-dlq")
    create_topic(b, inp, PARTS)
    rnd = random.Random(7)
    good = [" ".join(rnd.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(3)).encode()
            for _ in range(400)]
    records = [(i % PARTS, None, v) for i, v in enumerate(good[:200])]
    records.append((1, b"bad-key", b"\xff\xfe"))
    records += [(i % PARTS, None, v) for i, v in enumerate(good[200:])]
    where = produce(b, inp, records)
    bad_at = where[200]
    run_job(b, tmp_path, "wordcount", inp, out, "--dead-letter-topic", dlq)

    letters = dead_letters(b, dlq)
    assert len(letters) == 1, letters
    key, value, headers = letters[0]
    assert (key, value) == (b"bad-key", b"\xff\xfe"), "the dead letter is not the record as it came"
    error = header(headers, "runnel.error")
    assert "UTF-8" in error and "value" in error, error
    assert header(headers, "runnel.source") == f"{inp}/{bad_at[0]}@{bad_at[1]}"
    totals = {k: int(v) for k, v in last_values(read_output(b, out, PARTS)).items()}
    assert totals == expected_word_counts(good)


def test_wordcount_without_a_dead_letter_topic_fails_naming_the_record(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("wcfail-in"), unique_topic("wcfail-out")
    create_topic(b, inp, PARTS)
    records = [(i % PARTS, None, f"fine words {i}".encode()) for i in range(50)]
    records.append((0, None, b"\xff\xfe"))
    records += [(i % PARTS, None, f"more words {i}".encode()) for i in range(50)]
    where = produce(b, inp, records)
    bad_at = where[50]
    r = runnel("jobs", "run", "wordcount", "--bootstrap", b, "--input", inp, "--output", out,
               "--name", job_name("wcfail"), "--interval-ms", str(INTERVAL_MS), "--stop-when-idle", str(IDLE_ROUNDS))
    assert r.returncode != 0, f"the job went past an unreadable record:\n{r.stderr}"
    assert f"{inp}/{bad_at[0]}@{bad_at[1]}" in r.stderr, r.stderr
    assert "cannot be read" in r.stderr and "UTF-8" in r.stderr, r.stderr
    # The batch holding the record was not committed: nothing of it reached the output.
    assert count_records(read_output(b, out, PARTS)) == 0


def test_hashtags_sends_records_that_are_not_tweets_to_the_dead_letter_topic(broker, tmp_path):
    b = broker.bootstrap
    inp, out, dlq = unique_topic("tagsbad-in"), unique_topic("tagsbad-out"), unique_topic("tagsbad-dlq")
    create_topic(b, inp, PARTS)
    values = [tweet(i) for i in range(600)]
    bad = {b"this is not json #tag1": "JSON", b'{"user": "u1"}': "text"}  # the second lacks its text
    records = [(i % PARTS, None, v) for i, v in enumerate(values[:300])]
    records += [(0, b"k-not-json", b"this is not json #tag1"), (1, b"k-no-text", b'{"user": "u1"}')]
    records += [(i % PARTS, None, v) for i, v in enumerate(values[300:])]
    where = produce(b, inp, records)
    run_job(b, tmp_path, "hashtags", inp, out, "--dead-letter-topic", dlq)

    letters = dead_letters(b, dlq)
    assert sorted((k, v) for k, v, _ in letters) == \
        sorted([(b"k-not-json", b"this is not json #tag1"), (b"k-no-text", b'{"user": "u1"}')])
    for k, v, headers in letters:
        i = 300 if k == b"k-not-json" else 301
        assert header(headers, "runnel.source") == f"{inp}/{where[i][0]}@{where[i][1]}"
        error = header(headers, "runnel.error")
        assert "invalid JSON" in error and bad[v] in error, error
    expected = Counter()
    for v in values:
        expected.update(py_hashtags(json.loads(v)["text"]))
    sums: Counter = Counter()
    for recs in read_output(b, out, PARTS).values():
        for k, v in recs:
            sums[k] += int(v)
    assert dict(sums) == dict(expected)


# ------------------------------------------------------------------------------------- 3. the jobs CLI

def test_jobs_status_shows_the_batches_of_a_run(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("status-in"), unique_topic("status-out")
    create_topic(b, inp, PARTS)
    n = 900
    produce(b, inp, [(i % PARTS, None, f"line {i} {'hit' if i % 3 == 0 else 'miss'}".encode()) for i in range(n)])
    p = run_job(b, tmp_path, "grep", inp, out, "-o", "pattern=hit")
    r = runnel("jobs", "status", p.name, "--last", "100", "--bootstrap", b)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["INSTANCE", "BATCHES", "RECORDS", "PROCESS_MS", "DELAY_MS", "RANGES"], lines[0]
    rows = [ln.split() for ln in lines[1:] if ln.strip()]
    assert len(rows) >= IDLE_ROUNDS + 1, r.stdout  # a round with the input, then the idle ones
    total = 0
    covered: dict[int, list[tuple[int, int]]] = defaultdict(list)
    range_re = re.compile(rf"^{re.escape(inp)}/(\d+)\[(\d+),(\d+)\)$")
    for row in rows:
        assert row[0] == "0", row  # the instance
        assert re.fullmatch(r"s\d+-p\d+#\d+(,s\d+-p\d+#\d+)*", row[1]), row
        records = int(row[2])
        assert int(row[3]) >= 0 and int(row[4]) >= 0, row  # processing time, scheduling delay
        total += records
        in_row = 0
        for rng in row[5:]:
            m = range_re.match(rng)
            assert m, f"unexpected range {rng!r} in {row}"
            part, lo, hi = map(int, m.groups())
            assert hi > lo
            covered[part].append((lo, hi))
            in_row += hi - lo
        assert in_row == records, f"the ranges of {row} do not hold its {records} records"
    assert total == n, r.stdout
    assert re.search(rf"(^| ){re.escape(inp)}/0\[0,\d+\)", r.stdout), r.stdout
    # Each partition's ranges follow one another from 0 to its end.
    for part in range(PARTS):
        pos = 0
        for lo, hi in covered[part]:
            assert lo == pos, f"partition {part}: ranges {covered[part]}"
            pos = hi
        assert pos == n // PARTS, f"partition {part}: ranges {covered[part]}"


JOBS = ["wordcount", "grep", "hashtags", "hashtags-window", "mood", "join", "kmeans",
        "kmeans-train", "linear-train", "logistic-train"]


def test_jobs_list_shows_the_ten_jobs():
    r = runnel("jobs", "list")
    assert r.returncode == 0, r.stderr
    names = [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]
    assert names == JOBS, r.stdout


def test_jobs_run_of_an_unknown_job_lists_the_jobs(broker):
    r = runnel("jobs", "run", "nosuchjob", "--bootstrap", broker.bootstrap, "--input", "a", "--output", "b")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "no job named nosuchjob" in r.stderr, r.stderr
    for name in JOBS:
        assert name in r.stderr, r.stderr


@pytest.mark.parametrize("job,options,message", [
    ("grep", [], "needs the option pattern"),
    ("grep", ["-o", "pattern="], "option pattern is empty"),
    ("join", [], "needs exactly one of the options table"),
    ("join", ["-o", "table=/nonexistent/table.csv"], "cannot read table /nonexistent/table.csv"),
    ("kmeans", [], "needs the option model"),
    ("kmeans", ["-o", "model={tmp}/bad.json"], "is not a JSON array of centroids"),
    ("kmeans", ["-o", "model={tmp}/empty.json"], "has no centroids"),
    ("hashtags-window", ["-o", "window.ms=soon"], "window.ms=soon is not a number"),
    ("kmeans-train", ["-o", "k=0"], "k=0: must be at least 1"),
    ("kmeans-train", ["-o", "decay=2"], "decay=2: must be in [0, 1]"),
    ("kmeans-train", ["-o", "half.life=0"], "half.life=0: must be above 0"),
    ("kmeans-train", ["-o", "time.unit=hours"], "time.unit=hours: expected batches or points"),
    ("kmeans-train", ["-o", "centers={tmp}/empty.json"], "has no centroids"),
    ("linear-train", ["-o", "step.size=x"], "step.size=x: expected a number"),
    ("linear-train", ["-o", "mini.batch.fraction=0"], "mini.batch.fraction=0: must be in (0, 1]"),
    ("linear-train", ["-o", "iterations=0"], "iterations=0: must be at least 1"),
    ("linear-train", ["-o", "model={tmp}/bad.json"], "is not a model"),
    ("logistic-train", ["-o", "reg.param=-1"], "reg.param=-1: must be at least 0"),
])
def test_jobs_run_with_a_missing_or_bad_option_says_so(broker, tmp_path, job, options, message):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text("[]")
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    r = runnel("jobs", "run", job, "--bootstrap", broker.bootstrap, "--input", "a", "--output", "b", *options)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr


def test_jobs_run_with_a_missing_input_topic_says_so(broker):
    missing = unique_topic("no-such-input")
    r = runnel("jobs", "run", "grep", "--bootstrap", broker.bootstrap, "--input", missing,
               "--output", unique_topic("out"), "-o", "pattern=x", "--name", job_name("missing"))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert f"input topic {missing} does not exist" in r.stderr, r.stderr


# ---------------------------------------------------------------------------------------------- 4. metrics

def test_metrics_count_the_records_while_the_job_runs(broker, tmp_path):
    b = broker.bootstrap
    inp, out = unique_topic("metrics-in"), unique_topic("metrics-out")
    create_topic(b, inp, PARTS)
    n = 1200
    produce(b, inp, [(i % PARTS, None, f"line {i} {'hit' if i % 4 == 0 else ''}".encode()) for i in range(n)])
    port = free_port()
    name = job_name("metrics")
    p = JobProcess(tmp_path, b, "grep", inp, out, "--name", name, "--interval-ms", str(INTERVAL_MS),
                   "-o", "pattern=hit", "--metrics-listen", f"127.0.0.1:{port}").start()
    key = f'runnel_job_records_total{{job="{name}"}}'
    try:
        def records():
            assert p.proc.poll() is None, f"the job exited:\n{p.tail()}"
            m = scrape(port)
            assert m.get(key, 0) <= n, f"{key} = {m.get(key)} > {n} input records"
            return m if m.get(key) == n else None

        m = wait_until(records, 60, f"{key} to reach {n}", interval=0.2)
        assert m[f'runnel_job_batches_total{{job="{name}"}}'] >= 1
        assert m[f'runnel_job_dead_letters_total{{job="{name}"}}'] == 0
        # More input while it runs: the counter follows.
        produce(b, inp, [(i % PARTS, None, b"late hit") for i in range(100)])
        wait_until(lambda: scrape(port).get(key) == n + 100, 30, f"{key} to reach {n + 100}", interval=0.2)
        # Ctrl-C stops it after the current batch, cleanly.
        p.proc.send_signal(signal.SIGINT)
        assert p.wait(30) == 0, p.tail()
    finally:
        p.stop()
    assert sum(1 for recs in read_output(b, out, PARTS).values() for _ in recs) == n // 4 + 100


# ------------------------------------------------------------------------------------------- 5. co-located

@pytest.mark.runnel_only
@pytest.mark.timeout(240)
def test_colocated_wordcount_counts_the_input(tmp_path_factory):
    with own_broker(HostingBroker(tmp_path_factory.mktemp("hosting"), {}, [])) as b:
        inp, out = unique_topic("co-wc-in"), unique_topic("co-wc-out")
        create_topic(b.bootstrap, inp, PARTS)
        b.jobs = [f"wordcount:input={inp},output={out},interval.ms={INTERVAL_MS},name={job_name('co-wc')}"]
        b.restart(same_port=True)
        rnd = random.Random(8)
        values = [" ".join(rnd.choice(["red", "green", "blue", "cyan", "magenta"]) + str(rnd.randint(0, 9))
                           for _ in range(rnd.randint(1, 5))).encode() for _ in range(1500)]
        produce(b.bootstrap, inp, [(i % PARTS, None, v) for i, v in enumerate(values[:700])])
        produce(b.bootstrap, inp, [(i % PARTS, None, v) for i, v in enumerate(values[700:])])
        expected = expected_word_counts(values)
        last: dict = {}

        def counted():
            nonlocal last
            assert b.alive(), f"the hosting broker died\n{b.log_tail()}"
            last = {k: int(v) for k, v in last_values(read_output(b.bootstrap, out, PARTS)).items()}
            return last == expected

        try:
            wait_until(counted, 90, "the co-located wordcount to count the input", interval=1.0)
        except AssertionError:
            diff = {w: (last.get(w), expected.get(w)) for w in set(last) | set(expected)
                    if last.get(w) != expected.get(w)}
            raise AssertionError(f"co-located wordcount's totals differ (got, expected): {diff}")
        assert_totals_only_grow(read_output(b.bootstrap, out, PARTS))
