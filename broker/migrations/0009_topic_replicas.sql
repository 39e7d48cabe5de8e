-- What Metadata lists as a partition's replicas: the replication factor a topic was created with, and the
-- replica lists CreateTopics / CreatePartitions named ({"partition": [node ids]}). Every broker still serves
-- every partition from object storage; these only shape answers, as Kafka's tools expect them.
ALTER TABLE runnel_topics ADD COLUMN replication_factor SMALLINT NOT NULL DEFAULT 1;
ALTER TABLE runnel_topics ADD COLUMN assignments JSONB NOT NULL DEFAULT '{}';
