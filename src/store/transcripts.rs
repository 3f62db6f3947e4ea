//! Content-addressed, immutable transcripts.

use gensail_host_api::Transcript;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::db::query;
use super::{Store, StoreError, StoreResult, from_json};

/// What `GET /jobs/{id}` says about a transcript without returning it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TranscriptSummary {
    /// sha256 of the stored form.
    pub sha256: String,
    /// Segments.
    pub segment_count: i64,
    /// Segments with words in them.
    pub speech_segment_count: i64,
    /// Words.
    pub word_count: i64,
    /// Call length.
    pub duration_ms: i64,
}

impl Store {
    /// Stores a transcript (once per distinct content) and returns its hash.
    pub(super) async fn put_transcript(
        tx: &mut super::Conn,
        transcript: &Transcript,
        now: &str,
    ) -> StoreResult<String> {
        let content = serde_json::to_string(transcript).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sha256 = hex::encode(Sha256::digest(content.as_bytes()));
        let speech = transcript.segments.iter().filter(|s| !s.text.trim().is_empty()).count();
        let inserted = query(
            "INSERT INTO transcripts (sha256, segment_count, word_count, duration_ms, speech_segment_count, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&sha256)
        .bind(transcript.segments.len() as i64)
        .bind(transcript.word_count() as i64)
        .bind(transcript.duration_ms as i64)
        .bind(speech as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            query("INSERT INTO transcript_contents (sha256, content) VALUES ($1, $2)")
                .bind(&sha256)
                .bind(&content)
                .execute(&mut *tx)
                .await?;
        }
        Ok(sha256)
    }

    /// The transcript with this hash.
    pub async fn transcript(&self, sha256: &str) -> StoreResult<Transcript> {
        let row = query("SELECT content FROM transcript_contents WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("transcript"))?;
        from_json(row.get::<&str, _>("content"))
    }

    /// Counts about a transcript, without loading it.
    pub async fn transcript_summary(&self, sha256: &str) -> StoreResult<TranscriptSummary> {
        let row = query("SELECT sha256, segment_count, speech_segment_count, word_count, duration_ms FROM transcripts WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("transcript"))?;
        Ok(TranscriptSummary {
            sha256: row.get("sha256"),
            segment_count: row.get("segment_count"),
            speech_segment_count: row.get("speech_segment_count"),
            word_count: row.get("word_count"),
            duration_ms: row.get("duration_ms"),
        })
    }
}
