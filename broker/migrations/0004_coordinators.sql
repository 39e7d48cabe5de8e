-- Group and transaction coordinators of a cluster. Each group or transactional id is owned by one broker
-- at a time: a broker claims a key by bumping its epoch, and every write of the key's records names the
-- epoch it loaded, so a broker that lost the key (paused, cut off, or simply outvoted by a newer view of
-- the live brokers) has its writes refused.
CREATE TABLE runnel_coordinators (
    kind        SMALLINT    NOT NULL, -- FindCoordinator's key type: 0 group, 1 transactional id
    key         TEXT        NOT NULL,
    owner       INTEGER     NOT NULL,
    epoch       BIGINT      NOT NULL,
    claimed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);

-- The durable state of each key, record for record as a single node keeps it in its internal logs: a
-- group's metadata, committed offsets and the offsets of open transactions (JSON keys and values); a
-- transactional id's metadata (record '').
CREATE TABLE runnel_coordinator_records (
    kind    SMALLINT NOT NULL,
    key     TEXT     NOT NULL,
    record  TEXT     NOT NULL,
    value   TEXT     NOT NULL,
    PRIMARY KEY (kind, key, record)
);

-- The outcome of an ended transaction for each group its offsets went to: written by the transaction's
-- coordinator, applied and deleted by the group's (Kafka's marker in __consumer_offsets).
CREATE TABLE runnel_group_txn_markers (
    group_id     TEXT        NOT NULL,
    producer_id  BIGINT      NOT NULL,
    commit       BOOLEAN     NOT NULL,
    written_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, producer_id)
);
