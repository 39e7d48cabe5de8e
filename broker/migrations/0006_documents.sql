-- The cluster's small metadata documents (ACLs, SCRAM credentials, client quotas, dynamic broker configs),
-- each one JSON body as a standalone broker keeps it in a file. `version` grows with every change, so a
-- broker can tell whether the copy it installed is current.
CREATE TABLE runnel_documents (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0
);
