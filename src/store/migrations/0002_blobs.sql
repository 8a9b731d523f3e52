-- SPDX-License-Identifier: Apache-2.0
-- Encrypted blob files (docs/storage-format.md, "Blob files"): one row per sealed file under the
-- blob directory. The row commits in the same transaction as whatever refers to the blob (an
-- attachment, a recording); a sealed file without a row is removed by the start-up sweep.
CREATE TABLE blobs (
  id           TEXT PRIMARY KEY,  -- 32 lower-case hex digits; also the file name
  account_id   TEXT NOT NULL,
  user_id      TEXT,              -- the uploader; NULL for blobs owned by the account
  key_id       TEXT NOT NULL,     -- the data key the file is sealed with
  plain_bytes  INTEGER NOT NULL,
  stored_bytes INTEGER NOT NULL,  -- the file's size on disk: what quotas count
  created_at   INTEGER NOT NULL   -- Unix milliseconds
) WITHOUT ROWID;

CREATE INDEX blobs_by_owner ON blobs (account_id, user_id);
CREATE INDEX blobs_by_key ON blobs (key_id);
