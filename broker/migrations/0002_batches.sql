-- The record log of cluster mode: each partition's next offset, the uploaded objects, one row per batch
-- (where its bytes are), and the recent batches of each idempotent producer (for Kafka's sequence checks).
-- Topics are named by id, so a deleted and re-created topic never meets the old one's rows.
CREATE TABLE runnel_partitions (
    topic_id     UUID    NOT NULL,
    partition    INTEGER NOT NULL,
    next_offset  BIGINT  NOT NULL DEFAULT 0,
    log_start    BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition)
);

CREATE TABLE runnel_objects (
    object_key   TEXT        PRIMARY KEY,
    size_bytes   BIGINT      NOT NULL,
    uploaded_by  INTEGER     NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE runnel_batches (
    topic_id         UUID     NOT NULL,
    partition        INTEGER  NOT NULL,
    base_offset      BIGINT   NOT NULL,
    last_offset      BIGINT   NOT NULL,
    object_key       TEXT     NOT NULL REFERENCES runnel_objects (object_key),
    byte_offset      BIGINT   NOT NULL,
    byte_length      INTEGER  NOT NULL,
    max_timestamp    BIGINT   NOT NULL,
    producer_id      BIGINT   NOT NULL,
    producer_epoch   SMALLINT NOT NULL,
    base_sequence    INTEGER  NOT NULL,
    is_transactional BOOLEAN  NOT NULL,
    is_control       BOOLEAN  NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset)
);
-- fetches look batches up by the last offset they hold
CREATE INDEX runnel_batches_by_last_offset ON runnel_batches (topic_id, partition, last_offset);

CREATE TABLE runnel_producer_batches (
    producer_id    BIGINT   NOT NULL,
    topic_id       UUID     NOT NULL,
    partition      INTEGER  NOT NULL,
    producer_epoch SMALLINT NOT NULL,
    base_sequence  INTEGER  NOT NULL,
    last_sequence  INTEGER  NOT NULL,
    base_offset    BIGINT   NOT NULL,
    PRIMARY KEY (producer_id, topic_id, partition, base_offset)
);
