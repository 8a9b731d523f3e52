-- SPDX-License-Identifier: Apache-2.0
-- Sign-in throttling (iam::SignInThrottle): failed attempts per (user, client address), which
-- lock that pair with a growing back-off, and per user, which only add a short delay so that one
-- address cannot lock the only administrator out.
CREATE TABLE sign_in_failures (
  account_id      TEXT NOT NULL,
  user_id         TEXT NOT NULL,
  client_address  TEXT NOT NULL,
  failures        INTEGER NOT NULL,
  last_at         INTEGER NOT NULL,   -- Unix ms of the last counted attempt
  PRIMARY KEY (account_id, user_id, client_address)
) WITHOUT ROWID;

CREATE TABLE sign_in_users (
  account_id  TEXT NOT NULL,
  user_id     TEXT NOT NULL,
  last_at     INTEGER NOT NULL,       -- Unix ms of the last failed attempt from anywhere
  PRIMARY KEY (account_id, user_id)
) WITHOUT ROWID;
