-- How many times a worker lost its lease on the job while its runs were in
-- flight (the worker died, or was killed by what it ran). Past the limit
-- (GENSAIL_MAX_LOST_LEASES) the job is not reclaimed again: its runs fail
-- with lost_lease instead of crash-looping every worker that takes them.
ALTER TABLE jobs ADD COLUMN lost_leases INTEGER NOT NULL DEFAULT 0;
