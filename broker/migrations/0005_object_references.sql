-- The collector of unreferenced objects asks, per object, whether any batch still names it.
CREATE INDEX runnel_batches_by_object ON runnel_batches (object_key);

-- When the collector first found no batch naming the object.
ALTER TABLE runnel_objects ADD COLUMN unreferenced_since TIMESTAMPTZ;
