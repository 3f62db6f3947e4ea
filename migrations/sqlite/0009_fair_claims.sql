-- Fair claims: a worker picks the workspace with the fewest jobs under a live
-- lease, then that workspace's oldest claimable job. Both are index ranges
-- per workspace and status, so a claim costs per workspace, not per queued job.
CREATE INDEX jobs_workspace_status ON jobs(workspace_id, status, id);
