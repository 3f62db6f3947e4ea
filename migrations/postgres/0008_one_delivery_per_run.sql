-- Crash recovery keeps what is final: a run has at most one delivery per
-- endpoint, so a job taken back after a crash can never mint a second
-- webhook-id for one run. Existing duplicates keep the oldest delivery.
DELETE FROM delivery_attempts WHERE delivery_id IN (
    SELECT d.id FROM deliveries d
    WHERE EXISTS (SELECT 1 FROM deliveries o
                  WHERE o.algorithm_run_id = d.algorithm_run_id AND o.entity_type = d.entity_type
                    AND o.entity_id = d.entity_id AND o.id < d.id));
DELETE FROM deliveries WHERE EXISTS (
    SELECT 1 FROM deliveries o
    WHERE o.algorithm_run_id = deliveries.algorithm_run_id AND o.entity_type = deliveries.entity_type
      AND o.entity_id = deliveries.entity_id AND o.id < deliveries.id);
CREATE UNIQUE INDEX deliveries_one_per_run ON deliveries(algorithm_run_id, entity_type, entity_id);

-- Who held a job's lease before the claim that took it, so the job's log can
-- say it was taken back, from whom, and why.
ALTER TABLE jobs ADD COLUMN previous_lease_owner TEXT;
