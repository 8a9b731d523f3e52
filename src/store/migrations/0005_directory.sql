-- SPDX-License-Identifier: Apache-2.0
-- The directory (iam::Directory): partner accounts own customer accounts; users belong to exactly
-- one account. Ids are random and rows are never deleted by the directory, so a deleted user's
-- id is never reused (account termination, a retention job, removes rows).
CREATE TABLE accounts (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('partner', 'customer')),
  partner_id  TEXT REFERENCES accounts (id),   -- a customer's partner; NULL for a partner
  name        TEXT NOT NULL,
  country     TEXT NOT NULL,                   -- ISO 3166-1 alpha-2, upper case
  region      TEXT NOT NULL,                   -- from region.countries at creation; never changes
  status      TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'terminating')),
  created_at  INTEGER NOT NULL,
  CHECK ((kind = 'partner') = (partner_id IS NULL))
) WITHOUT ROWID;

CREATE INDEX accounts_by_partner ON accounts (partner_id, id);

CREATE TABLE users (
  account_id            TEXT NOT NULL REFERENCES accounts (id),
  id                    TEXT NOT NULL,
  username              TEXT NOT NULL,         -- lower case, unique within the account
  email                 TEXT NOT NULL,
  display_name          TEXT NOT NULL,
  role                  TEXT NOT NULL CHECK (role IN ('partner_admin', 'customer_admin', 'user')),
  password_hash         TEXT NOT NULL,         -- Argon2id PHC string (iam::PasswordHasher)
  must_change_password  INTEGER NOT NULL,
  status                TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'deleted')),
  created_at            INTEGER NOT NULL,
  PRIMARY KEY (account_id, id),
  UNIQUE (account_id, username)
) WITHOUT ROWID;
