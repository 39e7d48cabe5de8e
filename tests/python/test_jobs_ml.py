"""Streaming machine learning (issue 13): the shipped jobs kmeans-train, linear-train and logistic-train,
each killed with SIGKILL after every wave of training points (12 waves, so 12 kills mid-stream), write the
same models and predictions (read with read_committed) as a failure-free run of the same job over the same
input, and those models follow MLlib's update rules as numpy computes them here, independently, over the
same waves (within REL_TOL).

Input arrives in waves so that the batches are known: each wave of training points is one transaction on
one partition (a batch holds all of it or none), the next wave is only written once both runs published the
model trained on the previous one, and the points to predict follow the same way once the model is there.
So batch i of every run trains on wave i, and the predictions of wave i use model i.

The `kmeans` job, told to follow the model topic kmeans-train writes, applies each retrained model while it
runs: points are assigned by the first model and, later, by the last one, with no restart between.
"""

from __future__ import annotations

import json
import random
import time
import uuid

import numpy as np
import pytest

from helpers import create_topic, topic_partitions, unique_topic, wait_until
from job_helpers import JobProcess

pytestmark = [pytest.mark.runnel_only, pytest.mark.timeout(420)]

WAVES = 12
POINTS = 150  # training points per wave
PROBES = 40  # points to predict per wave
TRAIN_PARTS, PREDICT_PARTS = 3, 2
INTERVAL_MS = 200
REL_TOL = 1e-9
WAVE_TIMEOUT = 90


class Tail:
    """Every committed record of a topic, read with read_committed as it arrives, in partition order."""

    def __init__(self, bootstrap: str, topic: str):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        self.topic = topic
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ml-tail-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False, "isolation.level": "read_committed",
                                  "topic.metadata.refresh.interval.ms": 500})
        parts = topic_partitions(bootstrap, topic, timeout=60)
        assert parts, f"no topic {topic}"
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(parts)])
        self.records: list[tuple[str, str]] = []

    def poll(self) -> list[tuple[str, str]]:
        for m in self.consumer.consume(500, 0.2):
            assert not m.error(), m.error()
            self.records.append(((m.key() or b"").decode(), (m.value() or b"").decode()))
        return self.records

    def wait_count(self, n: int, what: str, alive) -> list[tuple[str, str]]:
        def enough():
            alive()
            return len(self.poll()) >= n
        wait_until(enough, WAVE_TIMEOUT, f"{n} {what} on {self.topic} (have {len(self.records)})", interval=0.1)
        # No more than expected: a batch applied twice would show as an extra record.
        time.sleep(0.3)
        assert len(self.poll()) == n, f"{self.topic}: {len(self.records)} records where {n} were expected"
        return self.records

    def close(self):
        self.consumer.close()


class Waves:
    """Transactional writer: each wave is one transaction on one partition."""

    def __init__(self, bootstrap: str):
        from confluent_kafka import Producer
        self.producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"ml-{uuid.uuid4().hex}",
                                  "linger.ms": 5})
        self.producer.init_transactions(30)

    def write(self, topic: str, partition: int, records: list[tuple[str | None, str]]):
        self.producer.begin_transaction()
        for key, value in records:
            self.producer.produce(topic, key=key.encode() if key else None, value=value.encode(),
                                  partition=partition)
        self.producer.commit_transaction(30)


class Run:
    """One run of a training job: its process, its prediction output and its model topic."""

    def __init__(self, b, tmp_path, job, train, predict, options, tag):
        self.out = unique_topic(f"{job}-{tag}-out")
        create_topic(b, self.out, 1)
        self.model_topic = f"{self.out}-model"
        opts = [a for o in [f"predict={predict}", *options] for a in ("-o", o)]
        self.job = JobProcess(tmp_path, b, job, train, self.out, "--name", unique_topic(f"{job}-{tag}"),
                              "--interval-ms", str(INTERVAL_MS), *opts).start()
        self.models: Tail | None = None
        self.predictions: Tail | None = None
        self.bootstrap = b

    def alive(self):
        self.job.check_running(f"{self.job.job}")

    def wait_models(self, n: int) -> list[dict]:
        if self.models is None:
            wait_until(lambda: self.alive() or topic_partitions(self.bootstrap, self.model_topic),
                       WAVE_TIMEOUT, f"model topic {self.model_topic}", interval=0.2)
            self.models = Tail(self.bootstrap, self.model_topic)
        recs = self.models.wait_count(n, "models", self.alive)
        assert all(k == "model" for k, _ in recs), recs
        return [json.loads(v) for _, v in recs]

    def wait_predictions(self, n: int) -> list[tuple[str, str]]:
        if self.predictions is None:
            self.predictions = Tail(self.bootstrap, self.out)
        return list(self.predictions.wait_count(n, "predictions", self.alive))

    def close(self):
        self.job.stop()
        for t in (self.models, self.predictions):
            if t:
                t.close()


def run_waves(broker, tmp_path, job, options, make_wave, make_probes):
    """Both runs over the same waves; the killed one gets SIGKILL at a random moment after every wave.
    Returns (waves, probes, killed run's models, its predictions, failure-free models, predictions)."""
    b = broker.bootstrap
    train, predict = unique_topic(f"{job}-train"), unique_topic(f"{job}-predict")
    create_topic(b, train, TRAIN_PARTS)
    create_topic(b, predict, PREDICT_PARTS)
    writer = Waves(b)
    rnd = random.Random(13)
    killed = Run(b, tmp_path, job, train, predict, options, "killed")
    steady = Run(b, tmp_path, job, train, predict, options, "steady")
    waves, probes = [], []
    try:
        for i in range(WAVES):
            wave = make_wave(rnd, i)
            waves.append(wave)
            writer.write(train, i % TRAIN_PARTS, [(None, text) for text in wave])
            time.sleep(rnd.uniform(0.0, 0.8))
            killed.job.kill9()
            killed.job.start()
            for r in (killed, steady):
                r.wait_models(i + 1)
            probe = make_probes(rnd, i)
            probes.append(probe)
            writer.write(predict, i % PREDICT_PARTS, probe)
            for r in (killed, steady):
                r.wait_predictions((i + 1) * PROBES)
        assert killed.job.starts == WAVES + 1 and steady.job.starts == 1
        result = (waves, probes, killed.wait_models(WAVES), killed.wait_predictions(WAVES * PROBES),
                  steady.wait_models(WAVES), steady.wait_predictions(WAVES * PROBES))
    finally:
        killed.close()
        steady.close()
    _, _, km, kp, sm, sp = result
    assert km == sm, "the killed run's models differ from the failure-free run's"
    assert kp == sp, "the killed run's predictions differ from the failure-free run's"
    return result


def close(got, want, what):
    got, want = np.asarray(got, float), np.asarray(want, float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    assert np.allclose(got, want, rtol=REL_TOL, atol=REL_TOL), f"{what}: {got.tolist()} vs numpy {want.tolist()}"


def vector_text(v) -> str:
    return ",".join(f"{x:.6f}" for x in v)


def parse(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


# ---------------------------------------------------------------------------------------------- k-means

BLOBS = [(0.0, 0.0), (10.0, 10.0), (10.0, 0.0)]
# The third centre is far from every point: its weight stays 0, so the first batch splits the largest
# cluster in two (MLlib's dying-cluster rule), and the model then finds all three blobs.
INITIAL_CENTRES = [[1.0, 1.0], [9.0, 9.0], [100.0, 100.0]]
DECAY = 0.5


def blob_points(rnd, n):
    pts = []
    for _ in range(n):
        cx, cy = rnd.choice(BLOBS)
        pts.append([cx + rnd.gauss(0, 1.5), cy + rnd.gauss(0, 1.5)])
    return pts


def kmeans_reference(waves):
    """MLlib's StreamingKMeansModel.update, batch by batch (time unit batches)."""
    centres, weights = np.array(INITIAL_CENTRES), np.zeros(len(INITIAL_CENTRES))
    models = []
    for wave in waves:
        x = np.array([parse(t) for t in wave])
        nearest = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1).argmin(1)
        weights = weights * DECAY
        for i in range(len(centres)):
            mine = x[nearest == i]
            if len(mine) == 0:
                continue
            updated = weights[i] + len(mine)
            lam = len(mine) / max(updated, 1e-16)
            weights[i] = updated
            centres[i] = centres[i] * (1 - lam) + mine.sum(0) * (lam / len(mine))
        largest, smallest = int(weights.argmax()), int(weights.argmin())
        if weights[smallest] < 1e-8 * weights[largest]:
            w = (weights[largest] + weights[smallest]) / 2
            weights[largest] = weights[smallest] = w
            c = centres[largest].copy()
            p = 1e-14 * np.maximum(np.abs(c), 1.0)
            centres[largest], centres[smallest] = c + p, c - p
        models.append((centres.copy(), weights.copy()))
    return models


def nearest_centre(centres, point) -> int:
    return int(((np.asarray(centres) - np.asarray(point)) ** 2).sum(1).argmin())


def test_kmeans_train_killed_after_every_wave_matches_a_failure_free_run_and_mllibs_rule(broker, tmp_path):
    centres_file = tmp_path / "centres.json"
    centres_file.write_text(json.dumps(INITIAL_CENTRES))

    def wave(rnd, i):
        return [vector_text(p) for p in blob_points(rnd, POINTS)]

    def probes(rnd, i):
        return [(f"w{i}p{j}", vector_text(p)) for j, p in enumerate(blob_points(rnd, PROBES))]

    waves, probe_waves, models, predictions, _, _ = run_waves(
        broker, tmp_path, "kmeans-train", [f"centers={centres_file}", f"decay={DECAY}"], wave, probes)
    reference = kmeans_reference(waves)
    for i, (m, (centres, weights)) in enumerate(zip(models, reference)):
        close(m["centers"], centres, f"centres after wave {i}")
        close(m["weights"], weights, f"weights after wave {i}")
        assert m["batches"] == i + 1 and m["points"] == (i + 1) * POINTS, m
    # The split happened: without it the far centre would still be at (100, 100).
    assert max(abs(c) for c in np.ravel(models[-1]["centers"])) < 20, models[-1]
    want = [(key, str(nearest_centre(reference[i][0], parse(text))))
            for i, wave in enumerate(probe_waves) for key, text in wave]
    assert predictions == want


def test_kmeans_following_the_model_topic_applies_each_retrained_model_without_a_restart(broker, tmp_path):
    b = broker.bootstrap
    train, predict = unique_topic("kmf-train"), unique_topic("kmf-predict")
    create_topic(b, train, 1)
    create_topic(b, predict, 1)
    centres_file = tmp_path / "centres.json"
    centres_file.write_text(json.dumps(INITIAL_CENTRES))
    trainer = Run(b, tmp_path, "kmeans-train", train, predict, [f"centers={centres_file}", f"decay={DECAY}"],
                  "trainer")
    inp, out = unique_topic("kmf-in"), unique_topic("kmf-out")
    create_topic(b, inp, 1)
    create_topic(b, out, 1)
    writer = Waves(b)
    rnd = random.Random(3)
    assigner = None
    seen = None
    try:
        writer.write(train, 0, [(None, vector_text(p)) for p in blob_points(rnd, POINTS)])
        first = trainer.wait_models(1)[0]["centers"]
        assigner = JobProcess(tmp_path, b, "kmeans", inp, out, "--name", unique_topic("kmf"),
                              "--interval-ms", str(INTERVAL_MS), "-o", f"model.topic={trainer.model_topic}").start()
        seen = Tail(b, out)
        # Points on the line between blobs (0,0) and (10,0): the first model (two centres split from one
        # cluster, one at the middle of two blobs) and the last (one centre per blob) assign them apart.
        line = [[x, 0.0] for x in np.linspace(1.0, 9.0, 17)]

        def probe(round_no):
            texts = [vector_text([x + round_no * 1e-6, y]) for x, y in line]
            writer.write(inp, 0, [(None, t) for t in texts])
            recs = seen.wait_count(len(seen.records) + len(texts), "assignments", assigner.check_running)
            got = dict((v, int(k)) for k, v in recs[-len(texts):])
            return [got[t] for t in texts], [parse(t) for t in texts]

        got, pts = probe(0)
        assert got == [nearest_centre(first, p) for p in pts], "the first model was not applied"
        for i in range(1, 6):
            writer.write(train, 0, [(None, vector_text(p)) for p in blob_points(rnd, POINTS)])
            models = trainer.wait_models(i + 1)
        last = models[-1]["centers"]
        want_last = [nearest_centre(last, p) for p in pts]
        assert want_last != [nearest_centre(first, p) for p in pts], "the probe cannot tell the models apart"
        # The followed topic is read before every round: a few rounds at most before the last model applies.
        for round_no in range(1, 40):
            got, pts = probe(round_no)
            if got == [nearest_centre(last, p) for p in pts]:
                break
        else:
            raise AssertionError(f"the kmeans job never applied the retrained model: {got}")
        assert assigner.starts == 1 and assigner.proc.poll() is None
    finally:
        trainer.close()
        if assigner:
            assigner.stop()
        if seen:
            seen.close()


# ---------------------------------------------------------------------------------------------- regression

LINEAR_TRUE = np.array([2.0, -3.0])
LOGISTIC_TRUE = np.array([1.5, -1.0])


def sgd_reference(waves, logistic: bool, step: float, iterations: int, reg: float, tol: float):
    """MLlib's GradientDescent.runMiniBatchSGD per batch (mini-batch fraction 1.0), warm-started from the
    previous batch's weights: the least-squares or logistic gradient, step / sqrt(i), L2 shrinking first."""
    w = np.zeros(2)
    models = []
    for wave in waves:
        data = np.array([parse(t) for t in wave])
        y, x = data[:, 0], data[:, 1:]
        previous = None
        for i in range(1, iterations + 1):
            margin = x @ w
            multiplier = (1 / (1 + np.exp(-margin)) - y) if logistic else (margin - y)
            gradient = (multiplier[:, None] * x).sum(0) / len(x)
            this_step = step / np.sqrt(i)
            if logistic:
                w = w * (1 - this_step * reg)
            w = w - this_step * gradient
            if previous is not None and np.linalg.norm(previous - w) < tol * max(np.linalg.norm(w), 1.0):
                break
            previous = w
        models.append(w.copy())
    return models


def regression_test(broker, tmp_path, job, logistic, options, step, reg):
    def wave(rnd, i):
        texts = []
        for _ in range(POINTS):
            x = [rnd.uniform(-1, 1), rnd.uniform(-1, 1)]
            if logistic:
                label = 1.0 if LOGISTIC_TRUE @ x + rnd.gauss(0, 0.3) > 0 else 0.0
            else:
                label = float(LINEAR_TRUE @ x + rnd.gauss(0, 0.1))
            texts.append(vector_text([label, *x]))
        return texts

    def probes(rnd, i):
        return [(f"w{i}p{j}", vector_text([rnd.uniform(-1, 1), rnd.uniform(-1, 1)])) for j in range(PROBES)]

    waves, probe_waves, models, predictions, _, _ = run_waves(
        broker, tmp_path, job, ["initial.weights=0,0", *options], wave, probes)
    reference = sgd_reference(waves, logistic, step, 50, reg, 0.001)
    for i, (m, w) in enumerate(zip(models, reference)):
        close(m["weights"], w, f"weights after wave {i}")
        assert m["batches"] == i + 1 and m["points"] == (i + 1) * POINTS, m
    keys = [k for wave in probe_waves for k, _ in wave]
    assert [k for k, _ in predictions] == keys
    for (key, value), (i, text) in zip(predictions, [(i, t) for i, wave in enumerate(probe_waves)
                                                     for _, t in wave]):
        margin = reference[i] @ np.array(parse(text))
        if logistic:
            if abs(margin) > 1e-9:
                assert float(value) == (1.0 if margin > 0 else 0.0), (key, value, margin)
        else:
            close(float(value), margin, f"prediction {key}")
    return models


def test_linear_train_killed_after_every_wave_matches_a_failure_free_run_and_mllibs_sgd(broker, tmp_path):
    models = regression_test(broker, tmp_path, "linear-train", False, [], 0.1, 0.0)
    # Learning, not only arithmetic: the weights approach the truth the data was drawn from.
    assert np.linalg.norm(np.array(models[-1]["weights"]) - LINEAR_TRUE) < 1.0, models[-1]


def test_logistic_train_killed_after_every_wave_matches_a_failure_free_run_and_mllibs_sgd(broker, tmp_path):
    models = regression_test(broker, tmp_path, "logistic-train", True, ["step.size=1.0", "reg.param=0.01"],
                             1.0, 0.01)
    w = np.array(models[-1]["weights"])
    cosine = w @ LOGISTIC_TRUE / (np.linalg.norm(w) * np.linalg.norm(LOGISTIC_TRUE))
    assert cosine > 0.95, models[-1]
