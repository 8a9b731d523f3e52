// SPDX-License-Identifier: Apache-2.0
// The audit API and commands through the built daemon (confab_events_fixture: the real daemon
// with test tokens `test:<account>:<user>[:<role>[:<real account>:<real user>]]`): tenant
// isolation, roles and assume-role, filters and cursors, the JSON Lines export, retention
// settings, verification after tampering (API and `confabd audit verify`, with the logged
// checkpoints), and `confabd retention run`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CONFABD, FIXTURES, startDaemon } from '../lib/daemon.mjs';
import { fixtureCommand as command, problemOf, rawTls, request, run, tmpDir, waitFor } from './lib.mjs';

const FIXTURE = path.join(FIXTURES ?? '', 'confab_events_fixture');

const ACME_ADMIN = 'test:acme:ann:customer_admin';
const ACME_USER = 'test:acme:bob:user';
const PARTNER = 'test:partner1:pat:partner_admin';
const PARTNER_AS_ACME = 'test:acme:pat:customer_admin:partner1:pat';
const GLOBEX_ADMIN = 'test:globex:gus:customer_admin';

let d;
let ca;
before(async () => {
  d = await startDaemon({ binary: FIXTURE, dataDir: tmpDir('confab-audit-'), stdin: 'pipe' });
  ca = [fs.readFileSync(d.cert)];
  // acme: six entries by two actors about users and a meeting; globex: two.
  const acme = [
    ['user.created', 'ann', 'user', 'bob'],
    ['user.created', 'ann', 'user', 'cid'],
    ['meeting.created', 'bob', 'meeting', 'm1'],
    ['user.disabled', 'ann', 'user', 'cid'],
    ['meeting.joined', 'cid', 'meeting', 'm1'],
    ['user.password_reset', 'ann', 'user', 'bob'],
  ];
  for (const [action, actor, type, id] of acme) {
    await command(d, { audit: { account: 'acme', action, actor, target_type: type, target_id: id,
      address: '127.0.0.1', port: 40000, details: { size: 1 } } });
  }
  for (const action of ['user.created', 'user.deleted']) {
    await command(d, { audit: { account: 'globex', action, actor: 'gus', target_type: 'user', target_id: 'g1' } });
  }
});
after(async () => {
  if (d) await d.stop('SIGKILL');
});

function get(p, token, extra = {}) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return request(d.url(p), { ca, headers, ...extra });
}
function put(p, token, body) {
  return request(d.url(p), {
    ca, method: 'PUT', body: JSON.stringify(body),
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  });
}
async function entries(account, token, query = '') {
  const res = await get(`/api/v1/accounts/${account}/audit${query}`, token);
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body);
}
// A problem document without what differs per request.
function sameBody(res) {
  const p = problemOf(res);
  assert.ok(p, res.body);
  delete p.request_id;
  return p;
}

describe('tenant isolation', () => {
  test('a Customer Admin reads its own account and gets 404 for another, as for none', async () => {
    const own = await entries('acme', ACME_ADMIN);
    assert.equal(own.entries.length, 6);
    assert.ok(own.entries.every((e) => e.account_id === 'acme'));
    assert.deepEqual(own.entries.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(own.entries[0].client, { address: '127.0.0.1', port: 40000 });
    assert.match(own.entries[0].time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const missing = await get('/api/v1/accounts/no-such-account/audit', ACME_ADMIN);
    assert.equal(missing.status, 404);
    for (const p of ['/audit', '/audit/export', '/audit/verify', '/audit/settings']) {
      const foreign = await get(`/api/v1/accounts/globex${p}`, ACME_ADMIN);
      assert.equal(foreign.status, 404, p);
      assert.deepEqual(sameBody(foreign), sameBody(missing), p);
      assert.ok(!foreign.body.includes('gus') && !foreign.body.includes('user.created'), p);
    }
    const write = await put('/api/v1/accounts/globex/audit/settings', ACME_ADMIN, { retention_days: 400 });
    assert.equal(write.status, 404);
    const globex = await entries('globex', GLOBEX_ADMIN);
    assert.equal(globex.entries.length, 2);  // acme's attempts are not in globex's log
    const settings = JSON.parse((await get('/api/v1/accounts/globex/audit/settings', GLOBEX_ADMIN)).body);
    assert.equal(settings.retention_days, 730);
  });

  test('refused attempts are recorded in the actor\'s own account', async () => {
    const denied = await entries('acme', ACME_ADMIN, '?target_id=globex&actor=ann');
    assert.ok(denied.entries.length >= 5, JSON.stringify(denied));
    const refusals = await entries('acme', ACME_ADMIN, '?outcome=denied&actor=ann');
    // Ann's refusals: those about globex, and the one about an account that does not exist.
    assert.ok(refusals.entries.every((e) => e.outcome === 'denied'));
    assert.deepEqual(refusals.entries.filter((e) => e.target.id === 'globex').map((e) => e.seq),
      denied.entries.map((e) => e.seq));
    assert.deepEqual(refusals.entries.filter((e) => e.target.id !== 'globex').map((e) => e.target.id),
      ['no-such-account']);
    assert.equal((await entries('acme', ACME_ADMIN, '?outcome=success&target_id=globex')).entries.length, 0);
    for (const e of denied.entries) {
      assert.equal(e.outcome, 'denied');
      assert.deepEqual(e.target, { type: 'account', id: 'globex' });
      assert.equal(e.actor.user_id, 'ann');
    }
    assert.ok(denied.entries.some((e) => e.action === 'audit.settings_updated'));
  });

  test('a User gets 403, and no token 401', async () => {
    const user = await get('/api/v1/accounts/acme/audit', ACME_USER);
    assert.equal(user.status, 403);
    assert.equal(problemOf(user).code, 'permission_denied');
    const none = await get('/api/v1/accounts/acme/audit');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    const bad = await get('/api/v1/accounts/acme/audit', 'not-a-token');
    assert.equal(bad.status, 401);
    // Two credentials: neither counts.
    const two = await request(d.url('/api/v1/accounts/acme/audit'),
      { ca, headers: { authorization: [`Bearer ${ACME_USER}`, `Bearer ${ACME_ADMIN}`] } });
    assert.equal(two.status, 400);
    assert.equal(problemOf(two).field, 'Authorization');
    const key = await get('/api/v1/audit/public-key', ACME_USER);
    assert.equal(key.status, 403);
  });

  test('a Partner Admin reads a customer\'s log only under assume-role, audited with both identities', async () => {
    const direct = await get('/api/v1/accounts/acme/audit', PARTNER);
    assert.equal(direct.status, 404);
    const assumed = await entries('acme', PARTNER_AS_ACME);
    assert.ok(assumed.entries.length >= 6);
    // An assumed role is Customer Admin only: never a partner role inside a customer.
    const escalated = await get('/api/v1/accounts/acme/audit', 'test:acme:pat:partner_admin:partner1:pat');
    assert.equal(escalated.status, 403);
    const res = await put('/api/v1/accounts/acme/audit/settings', PARTNER_AS_ACME, { retention_days: 400 });
    assert.equal(res.status, 200, res.body);
    const changed = await entries('acme', ACME_ADMIN, '?action=audit.settings_updated&target_id=acme');
    assert.equal(changed.entries.length, 1);
    const [e] = changed.entries;
    assert.deepEqual(e.actor, { account_id: 'acme', user_id: 'pat', real_account_id: 'partner1', real_user_id: 'pat' });
    assert.deepEqual(e.details, { retention_days_before: 730, retention_days: 400 });
  });
});

describe('queries', () => {
  test('filters by action, actor, target and time; order and cursor pages cover everything once', async () => {
    const users = await entries('acme', ACME_ADMIN, '?action=user.*');
    assert.deepEqual(users.entries.map((e) => e.action),
      ['user.created', 'user.created', 'user.disabled', 'user.password_reset']);
    const exact = await entries('acme', ACME_ADMIN, '?action=user.created');
    assert.equal(exact.entries.length, 2);
    // Bob's one recorded action, then his refused reads of the audit log and its key.
    const byBob = await entries('acme', ACME_ADMIN, '?actor=bob');
    assert.deepEqual(byBob.entries.map((e) => [e.action, e.outcome]),
      [['meeting.created', 'success'], ['audit.read', 'denied'], ['audit.key_read', 'denied']]);
    const m1 = await entries('acme', ACME_ADMIN, '?target_type=meeting&target_id=m1');
    assert.deepEqual(m1.entries.map((e) => e.seq), [3, 5]);
    const all = (await entries('acme', ACME_ADMIN, '?limit=1000')).entries;
    const t3 = all[2].ts;
    const window = await entries('acme', ACME_ADMIN, `?from=${t3}&to=${new Date(all[4].ts + 1).toISOString()}`);
    assert.ok(window.entries.every((e) => e.ts >= t3 && e.ts <= all[4].ts));
    assert.ok(window.entries.some((e) => e.seq === 3) && window.entries.some((e) => e.seq === 5));

    for (const order of ['asc', 'desc']) {
      const seen = [];
      let cursor = null;
      for (let pages = 0; pages < 100; ++pages) {
        const q = `?limit=2&order=${order}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
        const page = await entries('acme', ACME_ADMIN, q);
        assert.ok(page.entries.length <= 2);
        seen.push(...page.entries.map((e) => e.seq));
        cursor = page.next_cursor;
        if (!cursor) break;
      }
      const expected = all.map((e) => e.seq);
      assert.deepEqual(seen.slice(0, expected.length), order === 'asc' ? expected : [...seen].sort((a, b) => b - a).slice(0, expected.length));
      assert.equal(new Set(seen).size, seen.length, `${order}: a seq twice`);
      if (order === 'asc') assert.deepEqual(seen.slice(0, expected.length), expected);
    }
  });

  test('bad filters are 400 naming the parameter, and change nothing', async () => {
    const before = (await entries('acme', ACME_ADMIN, '?limit=1000')).entries.length;
    for (const [q, field] of [
      ['?limit=0', 'limit'], ['?limit=1001', 'limit'], ['?limit=ten', 'limit'],
      ['?from=yesterday', 'from'], ['?to=2026-13-01T00:00:00Z', 'to'],
      ['?from=2026-12-04T10:00:00Z&to=2026-12-04T09:00:00Z', 'to'],
      ['?order=random', 'order'], ['?cursor=-1', 'cursor'], ['?acton=user.created', 'acton'],
      ['?action=User.Created', 'action'], ['?actor=', 'actor'], ['?outcome=refused', 'outcome'],
    ]) {
      const res = await get(`/api/v1/accounts/acme/audit${q}`, ACME_ADMIN);
      assert.equal(res.status, 400, `${q}: ${res.body}`);
      assert.equal(problemOf(res).field, field, q);
    }
    for (const [p, field] of [
      ['/audit/export?limit=5', 'limit'], ['/audit/export?action=bad', 'action'],
      ['/audit?limit=5&limit=6', 'limit'], ['/audit?=x', 'query'],
      ['/audit/verify?deep=1', 'deep'], ['/audit/settings?x', 'x'],
    ]) {
      const res = await get(`/api/v1/accounts/acme${p}`, ACME_ADMIN);
      assert.equal(res.status, 400, `${p}: ${res.body}`);
      assert.equal(problemOf(res).field, field, p);
    }
    // HEAD shows the export's headers and records nothing.
    const head = await request(d.url('/api/v1/accounts/acme/audit/export'),
      { ca, method: 'HEAD', headers: { authorization: `Bearer ${ACME_ADMIN}` } });
    assert.equal(head.status, 200);
    assert.equal((await entries('acme', ACME_ADMIN, '?limit=1000')).entries.length, before);
    // An unencoded '+' offset arrives as a space and still reads as an offset.
    const plus = await get('/api/v1/accounts/acme/audit?from=2026-01-01T00:00:00+01:00', ACME_ADMIN);
    assert.equal(plus.status, 200, plus.body);
  });
});

describe('export', () => {
  test('JSON Lines, streamed, every entry once, and the export is itself recorded', async () => {
    const all = (await entries('acme', ACME_ADMIN, '?limit=1000')).entries;
    const res = await get('/api/v1/accounts/acme/audit/export', ACME_ADMIN);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/jsonl');
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.match(res.headers['content-disposition'], /^attachment; filename="audit-acme\.jsonl"$/);
    assert.ok(res.body.endsWith('\n'));
    const lines = res.body.trimEnd().split('\n').map((l) => JSON.parse(l));
    // Everything listed before, and the export's own entry (recorded before the first line).
    assert.deepEqual(lines.slice(0, all.length), all);
    assert.equal(lines.length, all.length + 1);
    assert.equal(lines.at(-1).action, 'audit.exported');
    assert.equal(lines.at(-1).actor.user_id, 'ann');
    const filtered = await get('/api/v1/accounts/acme/audit/export?action=meeting.*', ACME_ADMIN);
    const ml = filtered.body.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(ml.map((e) => e.seq), [3, 5]);
    // HTTP/1.0 has no chunked coding: the body is the raw lines, ended by the connection.
    const old = await rawTls(d.ports.https, { ca, chunks: [
      `GET /api/v1/accounts/acme/audit/export?action=meeting.* HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ACME_ADMIN}\r\n\r\n`] });
    assert.ok(old.closed);
    const [head10, body10] = old.data.split('\r\n\r\n');
    assert.match(head10, /^HTTP\/1\.0 200/);
    assert.ok(!/transfer-encoding/i.test(head10), head10);
    assert.deepEqual(body10.trimEnd().split('\n').map((l) => JSON.parse(l).seq), [3, 5]);
    const recorded = await entries('acme', ACME_ADMIN, '?action=audit.exported&target_id=acme');
    assert.equal(recorded.entries.length, 3);
    assert.deepEqual(recorded.entries[1].details, { action: 'meeting.*' });
  });
});

describe('settings', () => {
  test('retention below the minimum or unknown members are 400 and change nothing', async () => {
    const before = JSON.parse((await get('/api/v1/accounts/acme/audit/settings', ACME_ADMIN)).body);
    assert.equal(before.min_retention_days, 180);
    for (const [body, field] of [
      [{ retention_days: 179 }, 'retention_days'], [{ retention_days: '365' }, 'retention_days'],
      [{}, 'retention_days'], [{ retention_days: 365, keep: true }, 'keep'],
    ]) {
      const res = await put('/api/v1/accounts/acme/audit/settings', ACME_ADMIN, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(problemOf(res).field, field, JSON.stringify(body));
    }
    const after = JSON.parse((await get('/api/v1/accounts/acme/audit/settings', ACME_ADMIN)).body);
    assert.deepEqual(after, before);
    const ok = await put('/api/v1/accounts/acme/audit/settings', ACME_ADMIN, { retention_days: 180 });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).retention_days, 180);
  });
});

describe('verification', () => {
  const cli = () => ['--data-dir', d.dataPath, '--master-key-file', d.masterKeyFile];

  test('the API and confabd audit verify find the first edited entry; the public keys agree', async () => {
    const key = JSON.parse((await get('/api/v1/audit/public-key', ACME_ADMIN)).body);
    assert.equal(key.algorithm, 'Ed25519');
    const printed = await run(CONFABD, ['audit', 'public-key', ...cli()]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, key.public_key_pem);

    const good = JSON.parse((await get('/api/v1/accounts/acme/audit/verify', ACME_ADMIN)).body);
    assert.equal(good.ok, true, JSON.stringify(good));
    assert.equal(good.broken, null);
    assert.equal(good.key_id, key.key_id);
    const clean = await run(CONFABD, ['audit', 'verify', ...cli()]);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /acme: ok/);
    assert.match(clean.stdout, /globex: ok/);

    // What someone with the database (and its keys) could do: change a recorded target.
    await command(d, { sql: "UPDATE audit_entries SET target_id = 'eve' WHERE account_id = 'acme' AND seq = 2" });
    const bad = JSON.parse((await get('/api/v1/accounts/acme/audit/verify', ACME_ADMIN)).body);
    assert.equal(bad.ok, false);
    assert.equal(bad.broken.seq, 2, JSON.stringify(bad));
    const other = JSON.parse((await get('/api/v1/accounts/globex/audit/verify', GLOBEX_ADMIN)).body);
    assert.equal(other.ok, true);
    const caught = await run(CONFABD, ['audit', 'verify', ...cli()]);
    assert.equal(caught.code, 1, caught.stdout + caught.stderr);
    assert.match(caught.stdout, /acme: BROKEN at seq 2: /);
    assert.match(caught.stdout, /globex: ok/);
    const one = await run(CONFABD, ['audit', 'verify', '--account', 'globex', ...cli()]);
    assert.equal(one.code, 0, one.stdout);
    const typo = await run(CONFABD, ['audit', 'verify', '--account', 'glob3x', ...cli()]);
    assert.equal(typo.code, 2, typo.stdout + typo.stderr);
    assert.match(typo.stdout, /glob3x: no audit chain/);
    await command(d, { sql: "UPDATE audit_entries SET target_id = 'cid' WHERE account_id = 'acme' AND seq = 2" });
  });

  test('entries cut after the last stored checkpoint are caught against the logged one', async () => {
    const signed = await command(d, { checkpoint: true });
    assert.ok(signed.checkpoints >= 1);
    await waitFor(() => /audit checkpoint \{"account_id":"globex"/.test(d.log()), 10000, 'the logged checkpoint');
    // Cut globex's last entry and its stored checkpoint: the database alone looks consistent.
    await command(d, { sql: "DELETE FROM audit_checkpoints WHERE account_id = 'globex' AND seq = 2" });
    await command(d, { sql: "DELETE FROM audit_entries WHERE account_id = 'globex' AND seq = 2" });
    await command(d, { sql: "UPDATE audit_heads SET seq = 1, checkpoint_seq = 0, hash = (SELECT hash FROM audit_entries WHERE account_id = 'globex' AND seq = 1) WHERE account_id = 'globex'" });
    const api = JSON.parse((await get('/api/v1/accounts/globex/audit/verify', GLOBEX_ADMIN)).body);
    assert.equal(api.ok, true, 'without the log the cut is invisible: the reason the log holds a copy');
    const logFile = path.join(d.dataDir, 'confabd.log');
    fs.writeFileSync(logFile, d.log());
    const res = await run(CONFABD, ['audit', 'verify', '--account', 'globex', '--log', logFile, ...cli()]);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /globex: BROKEN at seq 2: /);
    // The exported key alone, kept outside the server, verifies the intact chain.
    const pem = path.join(d.dataDir, 'audit.pem');
    fs.writeFileSync(pem, JSON.parse((await get('/api/v1/audit/public-key', ACME_ADMIN)).body).public_key_pem);
    const acme = await run(CONFABD, ['audit', 'verify', '--account', 'acme', '--log', logFile, '--public-key', pem, ...cli()]);
    assert.equal(acme.code, 0, acme.stdout + acme.stderr);
    const wrongPem = path.join(d.dataDir, 'wrong.pem');
    fs.writeFileSync(wrongPem, 'not a key\n');
    const wrong = await run(CONFABD, ['audit', 'verify', '--public-key', wrongPem, ...cli()]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /holds no Ed25519 public key/);
  });

  test('confabd retention run is refused beside the daemon, and runs once it stopped', async () => {
    const busy = await run(CONFABD, ['retention', 'run', ...cli()]);
    assert.notEqual(busy.code, 0);
    assert.match(busy.stderr, /in use by another process/);
    assert.match(busy.stderr, /kill -USR1/);
    assert.equal((await d.stop()).code, 0);
    const done = await run(CONFABD, ['retention', 'run', ...cli()], { timeout: 60000 });
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.match(done.stdout, /done audit: 0 item\(s\)/);
    assert.match(done.stdout, /done events: \d+ item\(s\)/);
  });
});

describe('region', () => {
  test('a data directory stays in the region it was created for', async () => {
    const dir = tmpDir('confab-region-');
    const eu = await startDaemon({ dataDir: dir });
    assert.match(eu.log(), /serving region eu/);
    assert.equal((await eu.stop()).code, 0);
    // The same data directory under a node configured for another region: refused, exit 2.
    const config = path.join(dir, 'us.toml');
    fs.writeFileSync(config, `master_key_file = "${eu.masterKeyFile}"\n[server]\ndata_dir = "${eu.dataPath}"\n` +
      'https_port = 0\nhttp_port = 0\nmetrics_port = 0\n[region]\nserves = "us"\n');
    const us = await run(CONFABD, ['--config', config]);
    assert.equal(us.code, 2, us.stdout + us.stderr);
    assert.match(us.stderr + us.stdout,
      /region\.serves: this data directory holds the data of region "eu", but this node is configured to serve "us"/);
  });
});
