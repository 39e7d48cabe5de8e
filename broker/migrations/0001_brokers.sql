-- Cluster membership: one row per live broker, kept alive by its heartbeat (see broker/src/cluster/registry.rs).
-- lease_until is set from the database's clock, so brokers' clocks never disagree about who is alive.
CREATE TABLE runnel_brokers (
    node_id      INTEGER PRIMARY KEY,
    -- a new value each start: a heartbeat or a leave from an earlier life of the same id matches nothing
    incarnation  UUID        NOT NULL,
    -- the advertised listeners, as Kafka writes them: NAME://HOST:PORT,...
    listeners    TEXT        NOT NULL,
    rack         TEXT,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until  TIMESTAMPTZ NOT NULL
);
