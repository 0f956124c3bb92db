-- Bytes each user uploaded per UTC day, for the daily upload quota (upload_quota_mib_per_day).
-- An upload reserves its declared length before its body is read, in one statement that refuses
-- what would pass the quota, and gives it back if it fails (Features/Uploads/UploadsFeature.swift).
-- Rows older than two days are deleted by a periodic job.
CREATE TABLE upload_usage (
    user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day date NOT NULL,
    bytes bigint NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (user_id, day)
);
