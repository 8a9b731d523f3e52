-- SPDX-License-Identifier: Apache-2.0
-- Facts about the node whose data directory this is, set once: "region", the storage region it
-- serves (SPEC.md §7: one node serves one region; docs/operations.md, "Regions").
CREATE TABLE node_settings (
  name   TEXT PRIMARY KEY,
  value  TEXT NOT NULL
) WITHOUT ROWID;
