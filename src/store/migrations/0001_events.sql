-- SPDX-License-Identifier: Apache-2.0
-- Per-user event streams: each user's events carry a sequence number that only ever increases,
-- across restarts and after old events are purged (last_seq is kept separately for that reason).
CREATE TABLE event_streams (
  account_id TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  last_seq   INTEGER NOT NULL,
  PRIMARY KEY (account_id, user_id)
) WITHOUT ROWID;

CREATE TABLE events (
  account_id TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  id         TEXT NOT NULL,
  type       TEXT NOT NULL,
  ts         INTEGER NOT NULL,  -- Unix milliseconds
  actor      TEXT,
  data       TEXT NOT NULL,     -- JSON
  PRIMARY KEY (account_id, user_id, seq)
) WITHOUT ROWID;

CREATE INDEX events_by_time ON events (ts);
