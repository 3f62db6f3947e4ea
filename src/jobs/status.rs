//! The statuses, as closed enums. Each has one spelling, used on the wire and
//! stored in the database; the database's CHECK constraints list the same words.

/// Lets each database driver read a status from its text column. (Statuses
/// are bound as their words: see the store's `db::Arg`.)
macro_rules! read_as_text {
    ($name:ident, $($db:ty),+) => {
        $(
            impl sqlx::Type<$db> for $name {
                fn type_info() -> <$db as sqlx::Database>::TypeInfo {
                    <str as sqlx::Type<$db>>::type_info()
                }

                fn compatible(ty: &<$db as sqlx::Database>::TypeInfo) -> bool {
                    <str as sqlx::Type<$db>>::compatible(ty)
                }
            }

            impl<'r> sqlx::Decode<'r, $db> for $name {
                fn decode(value: <$db as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                    let word = <&str as sqlx::Decode<'r, $db>>::decode(value)?;
                    Self::parse(word).ok_or_else(|| format!("{word:?} is not a {}", stringify!($name)).into())
                }
            }
        )+
    };
}
pub(crate) use read_as_text;

/// One of the closed sets of words ([`words!`]): how the store binds it.
pub trait Word: Copy {
    /// The word, as stored.
    fn word(self) -> &'static str;
}

/// Defines a closed set of words (a status, a kind, a scope) as an enum with
/// its words, parsing, display, serde, OpenAPI, and reading from the database
/// as text; the words reach SQL only as bound values.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// Every word, in lifecycle order.
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            /// The word, as stored and as sent.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// The status a word names, if any.
            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // By hand: utoipa's derive does not see a `rename` given by a macro,
        // and the schema must list the words, not the variant names.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($word,)+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $crate::jobs::Word for $name {
            fn word(self) -> &'static str {
                self.as_str()
            }
        }

        $crate::jobs::status::read_as_text!($name, sqlx::Sqlite, sqlx::Postgres);
    };
}
pub(crate) use words;

words! {
    /// Where a job is in its lifecycle.
    JobStatus {
        /// Waiting for a worker (older rows; new jobs start analyzing).
        Queued = "queued",
        /// Waiting for its transcript (`POST /calls/audio`).
        Transcribing = "transcribing",
        /// Its runs are waiting or running.
        Analyzing = "analyzing",
        /// Runs done; webhook deliveries still pending.
        Publishing = "publishing",
        /// Every run completed (or it had none).
        Completed = "completed",
        /// Some runs completed, some failed.
        Partial = "partial",
        /// Every run failed.
        Failed = "failed",
        /// Refused by the workspace's filter (too short a call).
        Skipped = "skipped",
    }
}

words! {
    /// Where one algorithm run of a job is.
    RunStatus {
        /// Waiting for a worker.
        Pending = "pending",
        /// A worker is running it.
        Running = "running",
        /// It produced a result.
        Completed = "completed",
        /// It failed; its error says why.
        Failed = "failed",
    }
}

words! {
    /// Where one webhook delivery (a run's result to one endpoint) is.
    DeliveryStatus {
        /// Due now or at `next_attempt_at`.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Attempts ran out.
        Failed = "failed",
        /// The receiver answered 410 Gone: its endpoint is disabled.
        Disabled = "disabled",
    }
}

impl JobStatus {
    /// Nothing more happens to the job unless a client asks (retry, redeliver, requeue).
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Partial | Self::Failed | Self::Skipped)
    }

    /// Its analysis is over and has an outcome: `completed`, `partial` or
    /// `failed` (runs may be asked of it again; its deliveries may be replayed).
    pub const fn analysis_done(self) -> bool {
        matches!(self, Self::Completed | Self::Partial | Self::Failed)
    }

    /// The outcome of an analysis from its runs: `completed` when none failed
    /// (or there were none), `failed` when none completed, else `partial`.
    pub const fn outcome(total: i64, failed: i64) -> Self {
        if failed == 0 {
            Self::Completed
        } else if failed == total {
            Self::Failed
        } else {
            Self::Partial
        }
    }
}

impl RunStatus {
    /// A worker still has to run it.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::kinds;

    #[test]
    fn words_round_trip_through_parse_and_serde() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(serde_json::to_value(kinds::JobKind::OnDemand).unwrap(), "on_demand");
        for s in kinds::AuthType::ALL {
            assert_eq!(
                serde_json::from_value::<kinds::AuthType>(s.as_str().into()).unwrap(),
                *s
            );
        }
        assert_eq!(JobStatus::parse("done"), None);
        assert_eq!(JobStatus::outcome(0, 0), JobStatus::Completed);
        assert_eq!(JobStatus::outcome(3, 3), JobStatus::Failed);
        assert_eq!(JobStatus::outcome(3, 1), JobStatus::Partial);
    }

    /// Statuses, kinds and scopes reach SQL only as bound values of these
    /// enums: one of their words quoted as an SQL literal anywhere in the
    /// service's source fails here.
    #[test]
    fn no_query_spells_a_status() {
        let words: Vec<&str> = JobStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .chain(RunStatus::ALL.iter().map(|s| s.as_str()))
            .chain(DeliveryStatus::ALL.iter().map(|s| s.as_str()))
            .chain(kinds::JobKind::ALL.iter().map(|s| s.as_str()))
            .chain(kinds::AlgorithmStatus::ALL.iter().map(|s| s.as_str()))
            .chain(kinds::AlgorithmScope::ALL.iter().map(|s| s.as_str()))
            .chain(kinds::KeyScopeType::ALL.iter().map(|s| s.as_str()))
            .chain(kinds::AuthType::ALL.iter().map(|s| s.as_str()))
            .chain(kinds::BatchStatus::ALL.iter().map(|s| s.as_str()))
            .chain(kinds::BackfillOutcome::ALL.iter().map(|s| s.as_str()))
            .collect();
        let mut found = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
        let mut files = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files += 1;
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        for word in &words {
                            if line.contains(&format!("'{word}'")) {
                                found.push(format!("{}:{}: '{word}'", path.display(), n + 1));
                            }
                        }
                    }
                }
            }
        }
        assert!(files > 20, "the source tree was not found");
        assert!(
            found.is_empty(),
            "bind the enums of src/jobs instead:\n{}",
            found.join("\n")
        );
    }
}
