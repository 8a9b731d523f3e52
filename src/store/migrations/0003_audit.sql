-- SPDX-License-Identifier: Apache-2.0
-- The audit log (docs/audit.md): one hash chain per account. Rows are only ever inserted, and
-- removed by the audit retention job, oldest first, up to a signed checkpoint that stays behind
-- as the chain's starting point. No API updates or deletes them.
CREATE TABLE audit_entries (
  account_id      TEXT NOT NULL,
  seq             INTEGER NOT NULL,  -- 1, 2, 3, ... per account, never reused
  ts              INTEGER NOT NULL,  -- Unix milliseconds; never less than entry seq - 1's
  actor_account   TEXT NOT NULL,     -- the effective identity: whose rights were used
  actor_user      TEXT NOT NULL,     -- '' for the system itself
  real_account    TEXT NOT NULL,     -- under assume-role the real identity, else ''
  real_user       TEXT NOT NULL,
  client_address  TEXT NOT NULL,     -- '' when there is no network client
  client_port     INTEGER NOT NULL,
  action          TEXT NOT NULL,     -- "user.created", "audit.exported", ...
  target_type     TEXT NOT NULL,
  target_id       TEXT NOT NULL,
  outcome         TEXT NOT NULL,     -- success | denied | failure
  details         TEXT NOT NULL,     -- JSON object of strings, integers and booleans
  prev_hash       TEXT NOT NULL,     -- 64 hex: the hash of entry seq - 1 (or the genesis value)
  hash            TEXT NOT NULL,     -- 64 hex: SHA-256 over prev_hash and this entry
  PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;

-- No secondary indexes: each would be one more B-tree written by every audited change, and the
-- queries (docs/audit.md, "Queries") read an account's entries in seq order anyway. Time never
-- goes backwards within a chain (ts >= the previous entry's), so a time range is a seq range,
-- found by binary search on the primary key.

-- Signed checkpoints: Ed25519 over (account, seq, hash of entry seq, time, key id).
CREATE TABLE audit_checkpoints (
  account_id  TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  hash        TEXT NOT NULL,
  ts          INTEGER NOT NULL,
  key_id      TEXT NOT NULL,
  signature   TEXT NOT NULL,     -- base64, 64 bytes
  PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;

-- The head of each account's chain, so that appending is one lookup and so that an account whose
-- old entries were all removed by retention continues its chain where it was.
CREATE TABLE audit_heads (
  account_id      TEXT PRIMARY KEY,
  seq             INTEGER NOT NULL,
  hash            TEXT NOT NULL,
  checkpoint_seq  INTEGER NOT NULL,  -- the last signed seq (0: none yet)
  checkpoint_ts   INTEGER NOT NULL
) WITHOUT ROWID;

-- Per-account audit settings; an account without a row uses the configured defaults.
CREATE TABLE audit_settings (
  account_id      TEXT PRIMARY KEY,
  retention_days  INTEGER NOT NULL
) WITHOUT ROWID;

-- The retention scheduler's memory across restarts: when each job last ran and what it removed.
CREATE TABLE retention_runs (
  job             TEXT PRIMARY KEY,
  started_at      INTEGER NOT NULL,
  finished_at     INTEGER NOT NULL,  -- 0 while a run is in progress (or was cut short)
  items           INTEGER NOT NULL,
  bytes           INTEGER NOT NULL,
  error           TEXT NOT NULL
) WITHOUT ROWID;
