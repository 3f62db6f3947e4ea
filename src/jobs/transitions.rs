//! Every move a status may make, with the reason it happens. Nothing else is
//! ever written: the store checks each write against these tables, and a move
//! not listed is an [`IllegalTransition`] (an internal error, never stored).
//!
//! A job starts `analyzing` (a transcript came with it, or it is a child job),
//! `transcribing` (audio: its transcript comes later) or `skipped` (the
//! workspace's filter refused it). Runs start `pending`; deliveries start
//! `pending`.

use super::{DeliveryStatus, JobStatus, RunStatus};

use DeliveryStatus as D;
use JobStatus as J;
use RunStatus as R;

/// The statuses a new job may have.
pub const JOB_STARTS: &[JobStatus] = &[J::Analyzing, J::Transcribing, J::Skipped];

/// A job's moves.
pub const JOB: &[(JobStatus, JobStatus, &str)] = &[
    (
        J::Queued,
        J::Analyzing,
        "a worker claims it (jobs stored queued by older versions)",
    ),
    (J::Transcribing, J::Analyzing, "its transcript is attached"),
    (
        J::Skipped,
        J::Analyzing,
        "requeued: passes the filter now, and has its transcript",
    ),
    (
        J::Skipped,
        J::Transcribing,
        "requeued: passes the filter now, waits for its transcript",
    ),
    (
        J::Skipped,
        J::Skipped,
        "requeued: the filter refuses it again (the reason is updated)",
    ),
    (
        J::Analyzing,
        J::Publishing,
        "its runs are done; webhook deliveries are pending",
    ),
    (
        J::Analyzing,
        J::Completed,
        "its runs are done, none failed, nothing to deliver",
    ),
    (
        J::Analyzing,
        J::Partial,
        "its runs are done, some failed, nothing to deliver",
    ),
    (
        J::Analyzing,
        J::Failed,
        "its runs are done, all failed, nothing to deliver",
    ),
    (
        J::Publishing,
        J::Completed,
        "its last delivery settled (the outcome of its runs)",
    ),
    (
        J::Publishing,
        J::Partial,
        "its last delivery settled (the outcome of its runs)",
    ),
    (
        J::Publishing,
        J::Failed,
        "its last delivery settled (the outcome of its runs)",
    ),
    (
        J::Completed,
        J::Publishing,
        "redeliver: its deliveries are queued again",
    ),
    (J::Partial, J::Publishing, "redeliver: its deliveries are queued again"),
    (J::Failed, J::Publishing, "redeliver: its deliveries are queued again"),
];

/// An algorithm run's moves.
pub const RUN: &[(RunStatus, RunStatus, &str)] = &[
    (R::Pending, R::Running, "a worker claims its job"),
    (
        R::Running,
        R::Running,
        "a worker takes its job back from one whose lease expired",
    ),
    (R::Running, R::Completed, "the algorithm returned a result"),
    (
        R::Running,
        R::Failed,
        "the algorithm failed, or its workers kept dying (lost leases)",
    ),
    (
        R::Pending,
        R::Failed,
        "its workers kept dying before it started (lost leases)",
    ),
];

/// A webhook delivery's moves.
pub const DELIVERY: &[(DeliveryStatus, DeliveryStatus, &str)] = &[
    (D::Pending, D::Delivered, "the receiver answered 2xx"),
    (
        D::Pending,
        D::Pending,
        "an attempt failed and another is scheduled, or redeliver",
    ),
    (D::Pending, D::Failed, "attempts ran out"),
    (
        D::Pending,
        D::Disabled,
        "the receiver answered 410 Gone; its endpoint is disabled",
    ),
    (
        D::Delivered,
        D::Pending,
        "redeliver: sent again with the same delivery ID",
    ),
    (D::Failed, D::Pending, "redeliver: sent again with the same delivery ID"),
    (
        D::Disabled,
        D::Pending,
        "redeliver: sent again with the same delivery ID",
    ),
];

/// A move no table allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal {kind} transition: {from} -> {to}")]
pub struct IllegalTransition {
    /// `job`, `run` or `delivery`.
    pub kind: &'static str,
    /// The status it had.
    pub from: &'static str,
    /// The status it was asked to take.
    pub to: &'static str,
}

fn check<S: Copy + PartialEq>(
    table: &[(S, S, &str)],
    kind: &'static str,
    word: fn(S) -> &'static str,
    from: S,
    to: S,
) -> Result<(), IllegalTransition> {
    if table.iter().any(|(f, t, _)| *f == from && *t == to) {
        Ok(())
    } else {
        Err(IllegalTransition {
            kind,
            from: word(from),
            to: word(to),
        })
    }
}

/// Whether a job may move `from` → `to`.
pub fn check_job(from: JobStatus, to: JobStatus) -> Result<(), IllegalTransition> {
    check(JOB, "job", JobStatus::as_str, from, to)
}

/// Whether a run may move `from` → `to`.
pub fn check_run(from: RunStatus, to: RunStatus) -> Result<(), IllegalTransition> {
    check(RUN, "run", RunStatus::as_str, from, to)
}

/// Whether a delivery may move `from` → `to`.
pub fn check_delivery(from: DeliveryStatus, to: DeliveryStatus) -> Result<(), IllegalTransition> {
    check(DELIVERY, "delivery", DeliveryStatus::as_str, from, to)
}

/// Whether a new job may start with `status`.
pub fn check_job_start(status: JobStatus) -> Result<(), IllegalTransition> {
    if JOB_STARTS.contains(&status) {
        Ok(())
    } else {
        Err(IllegalTransition {
            kind: "job",
            from: "(new)",
            to: status.as_str(),
        })
    }
}

/// The statuses a run may move to `to` from: what an update to `to` may match.
pub fn run_sources(to: RunStatus) -> Vec<RunStatus> {
    RUN.iter().filter(|(_, t, _)| *t == to).map(|(f, _, _)| *f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_move_is_allowed_and_every_other_refused() {
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                let listed = JOB.iter().any(|(f, t, _)| f == from && t == to);
                assert_eq!(check_job(*from, *to).is_ok(), listed, "job {from} -> {to}");
            }
        }
        for from in RunStatus::ALL {
            for to in RunStatus::ALL {
                let listed = RUN.iter().any(|(f, t, _)| f == from && t == to);
                assert_eq!(check_run(*from, *to).is_ok(), listed, "run {from} -> {to}");
            }
        }
        for from in DeliveryStatus::ALL {
            for to in DeliveryStatus::ALL {
                let listed = DELIVERY.iter().any(|(f, t, _)| f == from && t == to);
                assert_eq!(check_delivery(*from, *to).is_ok(), listed, "delivery {from} -> {to}");
            }
        }
    }

    #[test]
    fn final_states_move_only_when_a_client_asks() {
        // A finished run never changes: its result or error is kept for good.
        for to in RunStatus::ALL {
            assert!(check_run(RunStatus::Completed, *to).is_err());
            assert!(check_run(RunStatus::Failed, *to).is_err());
        }
        // A finished job moves only to publishing (redeliver) or, skipped, on requeue.
        for (from, to, why) in JOB {
            if from.is_final() {
                assert!(
                    why.starts_with("redeliver") || why.starts_with("requeued"),
                    "{from} -> {to}: {why}"
                );
            }
        }
        assert_eq!(
            run_sources(RunStatus::Running),
            [RunStatus::Pending, RunStatus::Running]
        );
        // Redeliver sends every delivery of a job again, whatever its status.
        for from in DeliveryStatus::ALL {
            assert!(
                check_delivery(*from, DeliveryStatus::Pending).is_ok(),
                "{from} -> pending"
            );
        }
        assert_eq!(
            check_job(JobStatus::Completed, JobStatus::Analyzing)
                .unwrap_err()
                .to_string(),
            "illegal job transition: completed -> analyzing"
        );
    }
}
