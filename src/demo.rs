//! `gensail serve --demo`: a demo tenant, one key of each scope, and a few
//! sample calls, so the spec's curl commands work against a fresh laptop
//! install once a token and job ID are filled in.

use gensail_host_api::Transcript;

use crate::state::AppState;
use crate::store::{NewJob, Scope, TranscriptSource};

/// Sample calls ingested by the demo: (source call ID, transcript).
const CALLS: &[(&str, &str)] = &[
    (
        "demo-call-booking",
        include_str!("../plugins/fixtures/dental_booking.txt"),
    ),
    (
        "demo-call-reschedule",
        include_str!("../plugins/fixtures/dental_reschedule.txt"),
    ),
    (
        "demo-call-cancel",
        include_str!("../plugins/fixtures/dental_cancel.txt"),
    ),
    (
        "demo-call-missed",
        include_str!("../plugins/fixtures/dental_missed_opportunity.txt"),
    ),
    (
        "demo-call-insurance",
        include_str!("../plugins/fixtures/dental_insurance_question.txt"),
    ),
    (
        "demo-call-sales",
        include_str!("../plugins/fixtures/sales_competitors.txt"),
    ),
];

/// Algorithms the demo workspace runs on every ingested call.
const ASSIGNED: &[&str] = &[
    "sentiment_v1",
    "appointment_scheduling",
    "rise_dds_v4",
    "internal_metrics_v1",
];

/// Creates the demo tenant on first use, new keys every time, and prints them.
pub async fn seed(state: &AppState, address: std::net::SocketAddr) -> anyhow::Result<()> {
    let store = &state.store;
    let existing = store.find_workspace_by_name("Demo Front Desk").await?;
    let (workspace, fresh) = match existing {
        Some(w) => (w, false),
        None => {
            let partner = store.create_partner("Demo Dental Partner").await?;
            let organization = store
                .create_organization(partner.id, "Bright Smile Dental Group")
                .await?;
            (
                store.create_workspace(organization.id, "Demo Front Desk", None).await?,
                true,
            )
        }
    };
    let mut job_ids = Vec::new();
    if fresh {
        for id in ASSIGNED {
            store.assign_algorithm(workspace.id, id, None).await?;
        }
        let algorithm_ids: Vec<String> = ASSIGNED.iter().map(|s| (*s).to_owned()).collect();
        for (source_call_id, text) in CALLS {
            let transcript = Transcript::parse(text)?;
            let job = store
                .create_job(NewJob {
                    workspace_id: workspace.id,
                    parent_job_id: None,
                    kind: crate::jobs::JobKind::Ingest,
                    status: crate::jobs::JobStatus::Analyzing,
                    runs: store.new_runs(workspace.id, &algorithm_ids).await?,
                    algorithm_ids: algorithm_ids.clone(),
                    analytics_only: false,
                    transcript: TranscriptSource::New(transcript),
                    source_call_id: Some((*source_call_id).to_owned()),
                    source_company_id: Some("demo-company".into()),
                    recording_url: None,
                    contacted_at: None,
                    duration_seconds: None,
                    error: None,
                    event: "Demo call ingested".into(),
                })
                .await?;
            job_ids.push(job.job_id);
        }
        state.wake_worker();
    }
    let (_, workspace_token) = store.create_key(Scope::Workspace(workspace.id)).await?;
    let (_, organization_token) = store.create_key(Scope::Organization(workspace.organization_id)).await?;
    let (_, partner_token) = store.create_key(Scope::Partner(workspace.partner_id)).await?;
    let (_, platform_token) = store.create_key(Scope::Platform).await?;
    println!(
        "Demo data (workspace {} in organization {}, partner {}):",
        workspace.id, workspace.organization_id, workspace.partner_id
    );
    println!("  workspace key:    {workspace_token}");
    println!("  organization key: {organization_token}");
    println!("  partner key:      {partner_token}");
    println!("  platform key:     {platform_token}");
    if job_ids.is_empty() {
        println!("  sample calls were ingested on an earlier start: GET /api/v1/jobs lists them");
    } else {
        println!(
            "  sample call jobs: {}",
            job_ids.iter().map(|j| j.to_string()).collect::<Vec<_>>().join(", ")
        );
        println!(
            "  try: curl -X POST http://{address}/api/v1/jobs/{}/run-algorithms -H \"Authorization: Bearer {workspace_token}\" -H \"Content-Type: application/json\" -d '{{\"algorithm_ids\": [\"sentiment_v1\", \"competitor_mentions_v1\"], \"analytics_only\": true}}'",
            job_ids[0]
        );
    }
    Ok(())
}
