//! `gensail experiments run | show | results` and `gensail backfill`: one
//! request each, a progress bar while the server works, then the summary as
//! tables (or `--json`).

use std::io::IsTerminal;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::client::{Client, ServerArgs};
use super::print_out;

/// `gensail experiments ...`
#[derive(Debug, clap::Subcommand)]
pub enum ExperimentsCommand {
    /// Compares two algorithm versions over stored calls and prints the summary.
    Run(RunArgs),
    /// Prints an experiment's progress and summary.
    Show {
        /// The experiment.
        id: i64,
        /// Print the JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// The service and the key.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Prints an experiment's per-call results (`--format csv > diff.csv`).
    Results {
        /// The experiment.
        id: i64,
        /// `csv`, `jsonl` or `json`.
        #[arg(long, default_value = "csv")]
        format: String,
        /// `all` or `differ`.
        #[arg(long, default_value = "all")]
        only: String,
        /// The service and the key.
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Which calls (the API's `jobs` selector).
#[derive(Debug, clap::Args)]
pub struct SelectArgs {
    /// The workspace (a workspace key may leave it out).
    #[arg(long)]
    pub workspace: Option<i64>,
    /// Calls created since: `30d`, `12h` or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only jobs in these statuses (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Only calls of this company.
    #[arg(long)]
    pub source_company_id: Option<String>,
    /// At most this many calls.
    #[arg(long)]
    pub limit: Option<i64>,
}

impl SelectArgs {
    fn jobs(&self) -> Value {
        let mut jobs = json!({});
        if let Some(s) = &self.since {
            jobs["since"] = s.clone().into();
        }
        if !self.status.is_empty() {
            jobs["status"] = self.status.clone().into();
        }
        if let Some(c) = &self.source_company_id {
            jobs["source_company_id"] = c.clone().into();
        }
        if let Some(l) = self.limit {
            jobs["limit"] = l.into();
        }
        jobs
    }
}

/// `gensail experiments run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The version compared against: an ID, or ID@VERSION.
    #[arg(long)]
    pub baseline: String,
    /// The version under test: an ID, or ID@VERSION.
    #[arg(long)]
    pub candidate: String,
    /// JSON pointers to compare (repeatable; default: the whole output).
    #[arg(long)]
    pub compare: Vec<String>,
    /// A name for it.
    #[arg(long)]
    pub name: Option<String>,
    /// Which calls.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Print the JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// The service and the key.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `gensail backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// The algorithms to run on each call (comma separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub algorithms: Vec<String>,
    /// Which calls.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Create child jobs even where the algorithms already ran.
    #[arg(long)]
    pub force_rerun: bool,
    /// Deliver the child jobs' results by webhook (default: analytics only).
    #[arg(long)]
    pub webhooks: bool,
    /// Print the JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The service and the key.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs an experiments command.
pub async fn experiments(command: ExperimentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ExperimentsCommand::Run(args) => {
            let client = Client::new(&args.server);
            let mut body = json!({"baseline": args.baseline, "candidate": args.candidate, "jobs": args.select.jobs()});
            if let Some(w) = args.select.workspace {
                body["workspace_id"] = w.into();
            }
            if !args.compare.is_empty() {
                body["compare"] = args.compare.clone().into();
            }
            if let Some(n) = &args.name {
                body["name"] = n.clone().into();
            }
            let created = client.post("/experiments", &body).await?;
            let id = created["experiment_id"].as_i64().unwrap_or_default();
            eprintln!("experiment {id}: {} calls", created["total"]);
            follow(&client, &format!("/experiments/{id}/events"), created["total"].as_u64()).await?;
            show(&client, id, args.json).await
        }
        ExperimentsCommand::Show { id, json, server } => show(&Client::new(&server), id, json).await,
        ExperimentsCommand::Results {
            id,
            format,
            only,
            server,
        } => {
            let text = Client::new(&server)
                .text(&format!(
                    "/experiments/{id}/results?format={format}&only={only}&limit=1000"
                ))
                .await?;
            print_out(text.trim_end())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `gensail backfill`.
pub async fn backfill(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server);
    let mut body = json!({"algorithm_ids": args.algorithms, "jobs": args.select.jobs(),
                          "analytics_only": !args.webhooks, "force_rerun": args.force_rerun});
    if let Some(w) = args.select.workspace {
        body["workspace_id"] = w.into();
    }
    let created = client.post("/backfills", &body).await?;
    let id = created["backfill_id"].as_i64().unwrap_or_default();
    eprintln!("backfill {id}: {} calls", created["total"]);
    let done = follow(&client, &format!("/backfills/{id}/events"), created["total"].as_u64()).await?;
    if args.json {
        print_out(serde_json::to_string_pretty(&done)?)?;
    } else {
        let rows: Vec<(String, String)> = [
            "status",
            "total",
            "created",
            "skipped_existing",
            "skipped_invalid",
            "completed",
            "failed",
        ]
        .iter()
        .map(|k| (k.to_string(), plain(&done[*k])))
        .collect();
        print_out(table(
            &["", ""],
            &rows.iter().map(|(a, b)| vec![a.clone(), b.clone()]).collect::<Vec<_>>(),
        ))?;
        print_out(format!("child jobs: GET /api/v1/backfills/{id}/jobs"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows progress from an event stream: a bar on a terminal, nothing otherwise.
async fn follow(client: &Client, path: &str, total: Option<u64>) -> anyhow::Result<Value> {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} calls  {msg}").expect("a valid template"));
    let done = client
        .follow(path, |_, data| {
            let handled = data["done"]
                .as_u64()
                .unwrap_or_else(|| (data["progress"].as_f64().unwrap_or(0.0) * total.unwrap_or(0) as f64) as u64);
            bar.set_position(handled);
            let rate = data["rate_per_second"]
                .as_f64()
                .map(|r| format!("{r:.1}/s"))
                .unwrap_or_default();
            let eta = data["eta_seconds"]
                .as_f64()
                .map(|s| format!("  eta {s:.0}s"))
                .unwrap_or_default();
            bar.set_message(format!("{rate}{eta}"));
        })
        .await;
    bar.finish_and_clear();
    done
}

async fn show(client: &Client, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let e = client.get(&format!("/experiments/{id}")).await?;
    if json {
        print_out(serde_json::to_string_pretty(&e)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let side = |s: &Value| format!("{} {}", plain(&s["algorithm_id"]), plain(&s["version"]));
    let summary = &e["summary"];
    print_out(format!(
        "experiment {id} \"{}\": {}\nbaseline  {}\ncandidate {}\n",
        plain(&e["name"]),
        plain(&e["status"]),
        side(&e["baseline"]),
        side(&e["candidate"])
    ))?;
    let rows = [
        ("calls", format!("{} of {}", e["done"], e["total"])),
        ("compared", plain(&summary["compared"])),
        ("agree", plain(&summary["agree"])),
        (
            "agreement",
            summary["agreement_rate"]
                .as_f64()
                .map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
        ),
        ("baseline failed", plain(&summary["baseline_failed"])),
        ("candidate failed", plain(&summary["candidate_failed"])),
        ("memoized runs", plain(&e["memoized"])),
        ("fuel ratio", plain(&summary["cost"]["fuel_ratio"])),
        ("time ratio", plain(&summary["cost"]["time_ratio"])),
    ];
    let rows: Vec<Vec<String>> = rows.iter().map(|(a, b)| vec![a.to_string(), b.clone()]).collect();
    print_out(table(&["", ""], &rows))?;
    for (path, p) in summary["paths"].as_object().into_iter().flatten() {
        let name = if path.is_empty() { "(whole output)" } else { path };
        print_out(format!("\n{name}: {} calls differ", plain(&p["differ"])))?;
        if let Some(mean) = p["mean_difference"].as_f64() {
            print_out(format!("mean difference (candidate - baseline): {mean:.4}"))?;
        }
        if let Some(matrix) = p["confusion_matrix"].as_object() {
            print_out(confusion(matrix))?;
        }
    }
    let differ = client
        .get(&format!("/experiments/{id}/results?only=differ&limit=5"))
        .await?;
    let first: Vec<Vec<String>> = differ["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                plain(&r["job_id"]),
                plain(&r["source_call_id"]),
                r["differing_paths"].as_array().map_or_else(
                    || "a side failed".to_owned(),
                    |p| p.iter().map(plain).collect::<Vec<_>>().join(" "),
                ),
            ]
        })
        .collect();
    if !first.is_empty() {
        print_out(format!(
            "\nfirst differing calls:\n{}",
            table(&["job", "call", "differs at"], &first)
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A confusion matrix: baseline values down, candidate values across.
fn confusion(matrix: &serde_json::Map<String, Value>) -> String {
    let mut columns: Vec<&String> = matrix
        .values()
        .filter_map(Value::as_object)
        .flat_map(|r| r.keys())
        .collect();
    columns.sort();
    columns.dedup();
    let mut header = vec!["baseline \\ candidate"];
    header.extend(columns.iter().map(|c| c.as_str()));
    let rows: Vec<Vec<String>> = matrix
        .iter()
        .map(|(row, counts)| {
            let mut line = vec![row.clone()];
            line.extend(columns.iter().map(|c| plain(&counts[c.as_str()]).replace("null", "0")));
            line
        })
        .collect();
    table(&header, &rows)
}

/// Columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = Vec::new();
    if header.iter().any(|h| !h.is_empty()) {
        out.push(line(header.to_vec()));
    }
    for r in rows {
        out.push(line(r.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// A JSON value as a person reads it: strings without quotes.
fn plain(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}
