-- Transcript text lives apart from its summary row: reading a job's
-- transcript counts (every GET /jobs/{id}, every child-job creation) must not
-- walk past a multi-megabyte column, or creating a child would cost time in
-- proportion to the transcript's size.
CREATE TABLE transcript_contents (
    sha256 TEXT PRIMARY KEY REFERENCES transcripts(sha256),
    content TEXT NOT NULL
);
INSERT INTO transcript_contents (sha256, content) SELECT sha256, content FROM transcripts;
ALTER TABLE transcripts DROP COLUMN content;
