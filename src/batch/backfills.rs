//! Handling a backfill's calls: each goes through the `run-algorithms` use
//! case, so a backfill creates exactly the child jobs N such requests would.

use crate::jobs::BackfillOutcome;
use crate::state::AppState;
use crate::store::{BackfillChunk, BackfillClaim, OnDemand, StoreError};

/// Handles a claimed chunk: a child job per call that needs one (recorded in
/// the same transaction), else the reason none was created.
pub async fn process(state: &AppState, worker: &str, chunk: BackfillChunk) {
    let backfill = &chunk.backfill;
    let workspace = match state.store.workspace(backfill.workspace_id).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(backfill_id = backfill.backfill_id, error = %e, "cannot read the backfill's workspace");
            return;
        }
    };
    for item in &chunk.items {
        let claim = BackfillClaim {
            backfill_id: backfill.backfill_id,
            item_id: item.item_id,
            worker: worker.to_owned(),
        };
        let handled = async {
            let job = state.store.job(item.job_id).await?;
            let done = crate::on_demand::run_algorithms(
                state,
                &job,
                &workspace,
                &backfill.algorithm_ids,
                backfill.analytics_only,
                backfill.force_rerun,
                Some(&claim),
            )
            .await?;
            match done {
                Ok(OnDemand::Created { .. }) => Ok(()),
                Ok(OnDemand::AlreadyRan(_)) => {
                    state
                        .store
                        .skip_backfill_item(&claim, BackfillOutcome::SkippedExisting, None)
                        .await
                }
                Err(refusal) => {
                    state
                        .store
                        .skip_backfill_item(&claim, BackfillOutcome::SkippedInvalid, Some(&refusal.detail()))
                        .await
                }
            }
        }
        .await;
        match handled {
            Ok(()) => {}
            // Another worker took the call over (this one's lease ran out): it is theirs now.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => {
                tracing::error!(backfill_id = backfill.backfill_id, job_id = item.job_id, error = %e,
                    "backfill call not handled; it is taken again when the lease ends");
            }
        }
    }
}
