"""A job hosted in the broker (`serve --job`) under the authorizer: it acts as `jobs.principal`, not as a super
user, so it gets only what ACLs grant that principal, like any remote client would.

The job is wordcount (`runnel jobs list`), which needs: READ on its input topic; CREATE, READ and WRITE on its
internal topics `<name>-*` (words repartition, changelog, status: it creates them, reads the repartition topic
back and commits its offsets in the transaction); CREATE and WRITE on its output topic; READ on its group
`<name>`; WRITE on its transactional id `<name>-<instance>` (exactly-once). Each was found missing in turn by
the job's own log (GroupAuthorizationFailed from FindCoordinator, TransactionalIdAuthorizationFailed,
TopicAuthorizationFailed from CreateTopics, Fetch, TxnOffsetCommit and AddPartitionsToTxn). The admin client
and the input's producer use the ADMIN listener, whose principal User:ANONYMOUS is a super user
(security_helpers).

Runnel only: Kafka hosts no jobs.
"""

from __future__ import annotations

import random
import re
from contextlib import contextmanager

import pytest

import security_helpers as sh
from helpers import create_topic, topic_partitions, unique_topic, wait_until
from job_helpers import HostingBroker, expected_word_counts, last_values, own_broker, read_output

PARTS = 2
JOB_PRINCIPAL = "User:job"
INSTANCE = "i1"  # set explicitly: the transactional id the ACL names is `<name>-<instance>`


def _produce(bootstrap: str, topic: str, values: list[bytes]):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    errors = []
    for i, v in enumerate(values):
        p.produce(topic, v, partition=i % PARTS, on_delivery=lambda e, _m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors, f"input not delivered: {errors[:3]}"


def _log_matches(b, pattern: str) -> int:
    """How many lines of the broker's log match pattern."""
    rx = re.compile(pattern)
    return sum(1 for line in b.log_path.read_text(errors="replace").splitlines() if rx.search(line))


def _job_acls(name: str, inp: str, out: str, output_write: bool = True) -> list:
    """What wordcount needs (see the module docstring), optionally without WRITE on its output."""
    granted = [
        sh.acl("TOPIC", inp, JOB_PRINCIPAL, "READ"),
        *[sh.acl("TOPIC", f"{name}-", JOB_PRINCIPAL, op, pattern="PREFIXED") for op in ("CREATE", "READ", "WRITE")],
        sh.acl("TOPIC", out, JOB_PRINCIPAL, "CREATE"),
        sh.acl("GROUP", name, JOB_PRINCIPAL, "READ"),
        sh.acl("TRANSACTIONAL_ID", f"{name}-{INSTANCE}", JOB_PRINCIPAL, "WRITE"),
    ]
    # WRITE implies DESCRIBE; without either, Metadata hides the output topic the job just created (CREATE
    # implies no DESCRIBE) and the job stops at "unknown topic" before it ever asks to write.
    granted.append(sh.acl("TOPIC", out, JOB_PRINCIPAL, "WRITE" if output_write else "DESCRIBE"))
    return granted


@contextmanager
def _hosted_wordcount(tmp_path_factory):
    """A broker with the authorizer on, an input topic with records, and wordcount hosted as JOB_PRINCIPAL
    (no ACLs yet); yields (broker, admin address, job name, input, output, input values)."""
    sets = {**sh.listener_sets({"ADMIN": "PLAINTEXT"}), **sh.authorizer_sets(), "jobs.principal": JOB_PRINCIPAL}
    with own_broker(HostingBroker(tmp_path_factory.mktemp("hosting-acl"), sets, [])) as b:
        name = unique_topic("acl-wc")
        # neither under the job's prefix, so the ACLs on `<name>-` do not cover them
        inp, out = unique_topic("acl-in"), unique_topic("acl-out")
        create_topic(b.address("ADMIN"), inp, PARTS)
        b.jobs = [f"wordcount:input={inp},output={out},interval.ms=100,name={name},instance.id={INSTANCE}"]
        b.restart(same_port=True)
        rnd = random.Random(11)
        values = [" ".join(rnd.choice(["red", "green", "blue"]) + str(rnd.randint(0, 4))
                           for _ in range(rnd.randint(1, 4))).encode() for _ in range(300)]
        _produce(b.address("ADMIN"), inp, values)
        yield b, b.address("ADMIN"), name, inp, out, values
        # A clean stop lets the hosted job finish before the logs close: none of its state writes is cut off.
        b.stop()
        cut = [line for line in b.log_path.read_text().splitlines() if "log is closed" in line]
        assert not cut, f"state written after the logs closed: {cut[:3]}"


def _wait_counted(b, admin: str, out: str, values: list[bytes], timeout: float):
    """Until the output's latest totals are the input's word counts, each word counted exactly once."""
    expected = expected_word_counts(values)
    last: dict = {}

    def counted():
        nonlocal last
        assert b.alive(), f"the hosting broker died\n{b.log_tail()}"
        last = {k: int(v) for k, v in last_values(read_output(admin, out, PARTS)).items()}
        return last == expected

    try:
        wait_until(counted, timeout, "the job to count the input", interval=1.0)
    except AssertionError:
        diff = {w: (last.get(w), expected.get(w)) for w in set(last) | set(expected)
                if last.get(w) != expected.get(w)}
        raise AssertionError(f"totals differ (got, expected): {diff}\n{b.log_tail(40)}")


@pytest.mark.runnel_only
@pytest.mark.timeout(240)
def test_a_hosted_job_gets_only_what_acls_grant_its_principal(tmp_path_factory):
    with _hosted_wordcount(tmp_path_factory) as (b, admin, name, inp, out, values):
        # (a) No ACLs: the authorizer hides the input topic from the job's Metadata (as Kafka does for a
        # principal without DESCRIBE), so the job stops at its first check, and again after its restart.
        refused = rf"co-located job failed; restarting it in 5 s job={re.escape(name)} " \
                  rf"error=input topic {re.escape(inp)} does not exist"
        wait_until(lambda: _log_matches(b, refused) >= 2, 30, "the job to be refused its input twice",
                   interval=0.2)
        assert topic_partitions(admin, inp) is not None, "the admin does not see the input topic"
        assert topic_partitions(admin, out) is None, "the job created its output topic without CREATE"

        # (b) With the ACLs it needs the job (restarted by the broker 5 s after each failure) counts the input.
        sh.add_acls(admin, *_job_acls(name, inp, out))
        _wait_counted(b, admin, out, values, 60)


@pytest.mark.runnel_only
@pytest.mark.timeout(240)
def test_a_hosted_job_refused_its_output_recovers_once_write_is_granted(tmp_path_factory):
    with _hosted_wordcount(tmp_path_factory) as (b, admin, name, inp, out, values):
        # Everything but WRITE on the output: the job creates its topics, joins its group, reads the input
        # and runs its batches, but the transaction coordinator refuses the output partitions, so every batch
        # is aborted and nothing reaches the output. The client reports the refused partition's code
        # (TOPIC_AUTHORIZATION_FAILED), not the OPERATION_NOT_ATTEMPTED the others get.
        sh.add_acls(admin, *_job_acls(name, inp, out, output_write=False))
        no_write = rf"batch failed; tasks restart from their last checkpoint job={re.escape(name)} " \
                   rf"error=.*transaction coordinator: TopicAuthorizationFailed"
        wait_until(lambda: _log_matches(b, no_write) >= 1, 60,
                   "the job's batches to be refused the output partitions", interval=0.2)
        wait_until(lambda: topic_partitions(admin, out) is not None, 10, "the job to create its output topic")
        assert read_output(admin, out, PARTS) == {p: [] for p in range(PARTS)}, "output without WRITE"

        # An operator who forgot WRITE grants it: the job catches up, each word counted exactly once (the
        # refused batches were aborted, not half applied).
        sh.add_acls(admin, sh.acl("TOPIC", out, JOB_PRINCIPAL, "WRITE"))
        _wait_counted(b, admin, out, values, 60)
