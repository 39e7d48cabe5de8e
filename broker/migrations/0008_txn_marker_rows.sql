-- Group transaction markers were keyed by (group, producer): a producer's next transaction ending before the
-- group's coordinator applied the previous outcome overwrote it, so an abort replacing an unapplied commit
-- dropped that commit's offsets (a job's changelog then ran ahead of its group's offsets). Each ended
-- transaction now has a row of its own, applied in the order written.
ALTER TABLE runnel_group_txn_markers DROP CONSTRAINT runnel_group_txn_markers_pkey;
ALTER TABLE runnel_group_txn_markers ADD COLUMN seq BIGSERIAL PRIMARY KEY;
CREATE INDEX runnel_group_txn_markers_by_group ON runnel_group_txn_markers (group_id, seq);
