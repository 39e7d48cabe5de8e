-- The topic catalog of a cluster: every broker reads it (and hears of changes on the runnel_topics
-- channel); partition rows for each topic are in runnel_partitions.
CREATE TABLE runnel_topics (
    topic_id    UUID        PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE,
    partitions  INTEGER     NOT NULL,
    -- the topic's config overrides, as a JSON object of strings
    configs     JSONB       NOT NULL DEFAULT '{}',
    internal    BOOLEAN     NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Transactions on the shared log, kept by the produce commit: the first offset of each producer's open
-- transaction per partition (the last stable offset is the smallest), and every aborted transaction's
-- range (what read_committed fetches are told to skip).
CREATE TABLE runnel_txn_open (
    topic_id     UUID    NOT NULL,
    partition    INTEGER NOT NULL,
    producer_id  BIGINT  NOT NULL,
    first_offset BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
);

CREATE TABLE runnel_txn_aborted (
    topic_id     UUID    NOT NULL,
    partition    INTEGER NOT NULL,
    producer_id  BIGINT  NOT NULL,
    first_offset BIGINT  NOT NULL,
    last_offset  BIGINT  NOT NULL,
    PRIMARY KEY (topic_id, partition, last_offset)
);

-- Producer ids are handed out by brokers in blocks; each block is one value of this sequence, so no two
-- brokers (or two lives of one) ever hand out the same id.
CREATE SEQUENCE runnel_producer_id_blocks START 1;

-- The cluster's id, chosen by the first broker to start: every broker reports the same one.
CREATE TABLE runnel_cluster (
    singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id TEXT    NOT NULL
);
