//! The other closed sets of words the job core, the API and the database
//! share: what made a job, an algorithm's status and reach, a key's scope
//! level, and how webhook requests authenticate. Each has one spelling, on
//! the wire and in the database (whose CHECK constraints list the same words).

use super::status::words;

words! {
    /// What created a job.
    JobKind {
        /// A call arrived (`POST /calls/audio`, `/calls/transcript`).
        Ingest = "ingest",
        /// A child job from `POST /jobs/{id}/run-algorithms`.
        OnDemand = "on_demand",
        /// A child job from `POST /jobs/{id}/retry` (rerun).
        Retry = "retry",
    }
}

words! {
    /// Whether workspaces can run an algorithm.
    AlgorithmStatus {
        /// Runnable, at its active version.
        Active = "active",
        /// Stopped by a platform team; new runs are refused.
        Disabled = "disabled",
        /// Published but no version activated yet.
        Inactive = "inactive",
    }
}

words! {
    /// Which workspaces an algorithm is available to (besides the workspaces
    /// it is assigned to).
    AlgorithmScope {
        /// Every workspace.
        Global = "global",
        /// The workspaces of one partner (`scope_id`).
        Partner = "partner",
        /// The workspaces of one organization (`scope_id`).
        Organization = "organization",
        /// Only the workspaces it is assigned to.
        Workspace = "workspace",
    }
}

words! {
    /// The level an API key is scoped to.
    KeyScopeType {
        /// Administers the service (no `scope_id`).
        Platform = "platform",
        /// Every workspace of a partner.
        Partner = "partner",
        /// Every workspace of an organization.
        Organization = "organization",
        /// One workspace.
        Workspace = "workspace",
    }
}

words! {
    /// How webhook requests to an entity's endpoint authenticate, besides
    /// the signature every delivery carries.
    AuthType {
        /// Nothing more.
        None = "none",
        /// `Authorization: Bearer <token>`.
        Bearer = "bearer",
        /// An extra HMAC header with a key ID.
        Hmac = "hmac",
        /// `Authorization: Basic`.
        Basic = "basic",
    }
}

words! {
    /// Where an experiment or a backfill is.
    BatchStatus {
        /// Created; no worker has taken a call of it yet.
        Queued = "queued",
        /// Workers are taking its calls.
        Running = "running",
        /// Every call is done.
        Completed = "completed",
        /// Stopped by a client; calls not yet taken are never taken.
        Cancelled = "cancelled",
        /// It cannot go on (a version it needs can no longer be loaded).
        Failed = "failed",
    }
}

impl BatchStatus {
    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }
}

words! {
    /// What a backfill did with one call.
    BackfillOutcome {
        /// A child job runs the algorithms.
        Created = "created",
        /// Every algorithm already ran on the call (`run-algorithms`' 200).
        SkippedExisting = "skipped_existing",
        /// The call fails `run-algorithms`' checks (the reason is kept).
        SkippedInvalid = "skipped_invalid",
    }
}
