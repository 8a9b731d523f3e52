// SPDX-License-Identifier: Apache-2.0
// Encryption at rest as an operator meets it: a marker written through the daemon (into the
// database and into a blob) reaches no file in plaintext, after a graceful stop and after
// kill -9; an independent Python decryptor that knows only docs/storage-format.md reads it back;
// bad keys stop start-up with exit code 2 and one clear line, creating nothing; a tampered page
// is reported while the daemon stays up; backup and restore round-trip.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CONFABD, FIXTURES, startDaemon, writeMasterKey } from '../lib/daemon.mjs';
import { fixtureCommand as command, request, run, tmpDir, waitFor } from './lib.mjs';

const FIXTURE = path.join(FIXTURES ?? '', 'confab_events_fixture');
const DECRYPT = path.join(import.meta.dirname, 'decrypt_storage.py');
const PYTHON = '/usr/bin/python3';

const daemons = [];
after(async () => {
  for (const d of daemons) await d.stop('SIGKILL');
});

// Every regular file under `dir` (recursively) whose bytes contain `needle`.
function filesContaining(dir, needle) {
  const hits = [];
  const walk = (p) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const full = path.join(p, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile() && fs.readFileSync(full).includes(needle)) hits.push(full);
    }
  };
  walk(dir);
  return hits;
}

async function decrypt(d, ...args) {
  const r = await run(PYTHON, [DECRYPT, '--master-key', d.masterKeyFile, '--data-dir', d.dataPath, ...args],
    { timeout: 60000 });
  return r;
}

async function markerRun(stopSignal) {
  const marker = `MARKER-${stopSignal}-${Math.random().toString(36).slice(2)}-plaintext`;
  const dir = tmpDir('confab-storage-');
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  const d = await startDaemon({
    binary: FIXTURE, dataDir: dir, stdin: 'pipe', env: { TMPDIR: tmp, SQLITE_TMPDIR: tmp },
  });
  daemons.push(d);
  // Into the database: an event whose data carries the marker (kept in the events table).
  await command(d, { emit: { to: [['acct', 'alice']], type: 'message.created', data: { text: marker } } });
  // Into a blob of the same account.
  const reply = await command(d, { blob: { account: 'acct', user: 'alice', text: `${marker}\n`.repeat(5000) } });
  const blobPath = reply.blob.path;
  assert.ok(fs.existsSync(blobPath));
  const exit = await d.stop(stopSignal);
  assert.deepEqual(exit, stopSignal === 'SIGKILL' ? { code: null, signal: 'SIGKILL' } : { code: 0, signal: null });
  // The data directory (database, -wal, -shm, blobs, key store, TLS files), the temporary
  // directory and everything the daemon logged: no marker anywhere.
  assert.deepEqual(filesContaining(dir, marker), []);
  assert.deepEqual(filesContaining(tmp, marker), []);
  assert.ok(!d.log().includes(marker), 'the marker appeared in the log');
  const names = fs.readdirSync(d.dataPath);
  assert.ok(names.includes('confab.db'), names.join(' '));
  // The independent decryptor reads both back with the master key.
  const pages = await decrypt(d, 'pages');
  assert.equal(pages.code, 0, pages.stderr);
  assert.ok(pages.stdout.includes(marker), 'the decrypted pages hold the marker');
  const page1 = await decrypt(d, 'page', '1');
  assert.equal(page1.code, 0, page1.stderr);
  assert.ok(page1.stdout.startsWith('SQLite format 3\0'));
  const blob = await decrypt(d, 'blob', blobPath);
  assert.equal(blob.code, 0, blob.stderr);
  assert.equal(blob.stdout, `${marker}\n`.repeat(5000));
  // A flipped byte in the blob: the decryptor refuses it, as confabd does.
  const raw = fs.readFileSync(blobPath);
  raw[200] ^= 1;
  fs.writeFileSync(blobPath, raw);
  const tampered = await decrypt(d, 'blob', blobPath);
  assert.equal(tampered.code, 1);
  assert.match(tampered.stderr, /authentication failed/);
  return d;
}

test('a marker reaches no file in plaintext after a graceful stop, and decrypts with the documented format', async () => {
  await markerRun('SIGTERM');
});

test('a marker reaches no file in plaintext after kill -9, and decrypts from the WAL', async () => {
  const d = await markerRun('SIGKILL');
  // The daemon starts again on what kill -9 left.
  const again = await startDaemon({ binary: FIXTURE, dataDir: d.dataDir, stdin: 'pipe' });
  daemons.push(again);
  assert.equal((await again.stop()).code, 0);
});

// Starts confabd expecting it to refuse, and returns its exit and output.
async function refused(config, dataDir) {
  const dir = dataDir ?? tmpDir('confab-keys-');
  try {
    const d = await startDaemon({ dataDir: dir, config });
    daemons.push(d);
    await d.stop('SIGKILL');
    assert.fail(`confabd started:\n${d.log()}`);
  } catch (e) {
    const m = /daemon exited early \((.*?)\):\n([\s\S]*)$/.exec(e.message);
    assert.ok(m, e.message);
    return { exit: JSON.parse(m[1]), output: m[2], dir };
  }
}

test('a wrong, missing, empty or loose master key stops start-up with exit code 2 and one line', async () => {
  // Create a data directory under one key.
  const dir = tmpDir('confab-keys-');
  const first = await startDaemon({ dataDir: dir });
  daemons.push(first);
  assert.equal((await first.stop()).code, 0);
  const dataPath = first.dataPath;
  const before = fs.readFileSync(path.join(dataPath, 'confab.db'));

  const other = writeMasterKey(path.join(dir, 'other.key'));
  const wrong = await refused({ master_key_file: other, server: { data_dir: dataPath } }, dir);
  assert.deepEqual(wrong.exit, { code: 2, signal: null });
  assert.match(wrong.output, /the master key does not match the key store .*keystore\.json \(key id [0-9a-f]{16}, store expects [0-9a-f]{16}\): wrong key file\?/);

  const missing = path.join(dir, 'missing.key');
  const gone = await refused({ master_key_file: missing, server: { data_dir: dataPath } }, dir);
  assert.deepEqual(gone.exit, { code: 2, signal: null });
  assert.match(gone.output, new RegExp(`master key file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not found`));

  const empty = path.join(dir, 'empty.key');
  fs.writeFileSync(empty, '', { mode: 0o600 });
  const blank = await refused({ master_key_file: empty, server: { data_dir: dataPath } }, dir);
  assert.deepEqual(blank.exit, { code: 2, signal: null });
  assert.match(blank.output, /master key file .*empty\.key: is empty/);

  const loose = writeMasterKey(path.join(dir, 'loose.key'));
  fs.chmodSync(loose, 0o644);
  const open = await refused({ master_key_file: loose, server: { data_dir: dataPath } }, dir);
  assert.deepEqual(open.exit, { code: 2, signal: null });
  assert.match(open.output, /master key file .*loose\.key: mode 0644 is too open \(must be 0600 or 0400, owned by this user\)/);

  // None of them touched the database.
  assert.ok(fs.readFileSync(path.join(dataPath, 'confab.db')).equals(before));

  // On a fresh data directory a bad key creates nothing: no database, plaintext or otherwise.
  const fresh = await refused({ master_key_file: missing }, tmpDir('confab-keys-'));
  assert.deepEqual(fresh.exit, { code: 2, signal: null });
  assert.ok(!fs.existsSync(path.join(fresh.dir, 'var', 'confab.db')));
});

test('the embedded default creates the master key outside the data directory and says where', async () => {
  const dir = tmpDir('confab-default-key-');
  const home = path.join(dir, 'config-home');
  const d = await startDaemon({ dataDir: dir, config: { master_key_file: null }, env: { XDG_CONFIG_HOME: home } });
  daemons.push(d);
  const m = /created a new master key at (\S+)/.exec(d.log());
  assert.ok(m, d.log());
  const keyFile = m[1];
  assert.ok(keyFile.startsWith(path.join(home, 'confab') + path.sep), keyFile);
  assert.ok(!keyFile.startsWith(d.dataPath));
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  assert.equal((await d.stop()).code, 0);
  // Started again, it uses the same key and says so without creating one.
  const again = await startDaemon({ dataDir: dir, config: { master_key_file: null }, env: { XDG_CONFIG_HOME: home } });
  daemons.push(again);
  assert.ok(!/created a new master key/.test(again.log()));
  assert.equal((await again.stop()).code, 0);
});

test('a tampered page is reported as corruption while the daemon stays up', async () => {
  const dir = tmpDir('confab-tamper-');
  const d = await startDaemon({ binary: FIXTURE, dataDir: dir, stdin: 'pipe' });
  daemons.push(d);
  for (let i = 0; i < 50; ++i) {
    await command(d, { emit: { to: [['acct', 'alice']], type: 'message.created', data: { n: i, pad: 'x'.repeat(500) } } });
  }
  assert.equal((await d.stop()).code, 0);
  // Flip one ciphertext byte in every page that holds event rows (found by decrypting with the
  // independent decryptor): the schema and the node's own settings stay readable, so the daemon
  // starts; the first read of the events then meets a page that does not authenticate.
  const file = path.join(d.dataPath, 'confab.db');
  const plain = await run(PYTHON, [DECRYPT, '--master-key', d.masterKeyFile, '--data-dir', d.dataPath, 'pages'],
    { encoding: 'buffer' });
  assert.equal(plain.code, 0, String(plain.stderr));
  const raw = fs.readFileSync(file);
  const pad = Buffer.from('x'.repeat(500));
  let flipped = 0;
  for (let off = 4096; off < raw.length; off += 4096) {
    if (plain.stdout.subarray(off, off + 4096).includes(pad)) {
      raw[off + 100] ^= 0x40;
      ++flipped;
    }
  }
  assert.ok(flipped >= 5, `only ${flipped} pages hold events`);
  fs.writeFileSync(file, raw);
  const again = await startDaemon({ binary: FIXTURE, dataDir: dir, stdin: 'pipe', config: { events: { retention_count: 1 } } });
  daemons.push(again);
  // SIGUSR1 asks for a retention run now, whose events job (49 events past the count of one)
  // reads the tampered pages.
  again.proc.kill('SIGUSR1');
  await waitFor(() => /encrypted database page at offset \d+ of .*confab\.db failed authentication: corrupt or tampered/
    .test(again.log()), 15000, 'the corruption report');
  await waitFor(() => /retention job events failed after 0 batch\(es\), 0 item\(s\) removed: storage corruption/
    .test(again.log()), 15000, 'the failed retention job');
  // Still serving.
  const health = await request(again.url('/healthz'), { ca: [fs.readFileSync(again.cert)] });
  assert.equal(health.status, 200);
  assert.equal((await again.stop()).code, 0);
});

test('confabd backup and restore round-trip an encrypted data directory', async () => {
  const dir = tmpDir('confab-backup-');
  const d = await startDaemon({ binary: FIXTURE, dataDir: dir, stdin: 'pipe' });
  daemons.push(d);
  const marker = `BACKUP-MARKER-${Math.random().toString(36).slice(2)}`;
  await command(d, { emit: { to: [['acct', 'alice']], type: 'message.created', data: { text: marker } } });
  const blob = (await command(d, { blob: { account: 'acct', user: 'alice', text: marker } })).blob;
  // Online: the daemon keeps running while the backup is taken.
  const archive = path.join(dir, 'backup.tar');
  const cfg = ['--data-dir', d.dataPath, '--master-key-file', d.masterKeyFile];
  const b = await run(CONFABD, ['backup', archive, ...cfg], { timeout: 60000 });
  assert.equal(b.code, 0, b.stdout + b.stderr);
  assert.ok(!fs.readFileSync(archive).includes(marker), 'the backup holds the marker in plaintext');
  assert.equal((await d.stop()).code, 0);

  const target = path.join(dir, 'restored');
  const r = await run(CONFABD, ['restore', archive, '--data-dir', target, '--master-key-file', d.masterKeyFile],
    { timeout: 60000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const restoredBlob = path.join(target, path.relative(d.dataPath, blob.path));
  assert.ok(fs.readFileSync(restoredBlob).equals(fs.readFileSync(blob.path)));
  const pages = await run(PYTHON, [DECRYPT, '--master-key', d.masterKeyFile, '--data-dir', target, 'pages']);
  assert.equal(pages.code, 0, pages.stderr);
  assert.ok(pages.stdout.includes(marker));
  // A second restore into the same directory is refused; the restored one starts.
  const twice = await run(CONFABD, ['restore', archive, '--data-dir', target, '--master-key-file', d.masterKeyFile]);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /is not empty \(it holds keystore\.json, confab\.db, blobs\); restore into an empty one/);
  const up = await startDaemon({ binary: FIXTURE, dataDir: dir, stdin: 'pipe', config: { server: { data_dir: target }, master_key_file: d.masterKeyFile } });
  daemons.push(up);
  assert.equal((await up.stop()).code, 0);
  // The wrong master key cannot restore.
  const other = writeMasterKey(path.join(dir, 'other.key'));
  const wrong = await run(CONFABD, ['restore', archive, '--data-dir', path.join(dir, 'r2'), '--master-key-file', other]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /the master key does not match the key store/);
});

test('confabd rekey --database re-encrypts a stopped data directory, and refuses a running one', async () => {
  const dir = tmpDir('confab-rekey-');
  const d = await startDaemon({ binary: FIXTURE, dataDir: dir, stdin: 'pipe' });
  daemons.push(d);
  const marker = `REKEY-MARKER-${Math.random().toString(36).slice(2)}`;
  await command(d, { emit: { to: [['acct', 'alice']], type: 'message.created', data: { text: marker } } });
  const cfg = ['--data-dir', d.dataPath, '--master-key-file', d.masterKeyFile];
  const busy = await run(CONFABD, ['rekey', '--database', ...cfg], { timeout: 30000 });
  assert.equal(busy.code, 1, busy.stdout + busy.stderr);
  assert.match(busy.stderr, /in use by another process \(stop confabd first\)/);
  assert.equal((await d.stop()).code, 0);
  const keyIdOf = () => JSON.parse(fs.readFileSync(path.join(d.dataPath, 'keystore.json'), 'utf8')).database_key.id;
  const before = keyIdOf();
  const oldPage1 = fs.readFileSync(path.join(d.dataPath, 'confab.db')).subarray(0, 4096);
  const r = await run(CONFABD, ['rekey', '--database', ...cfg], { timeout: 60000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /re-encrypted \d+ pages \(\d+ bytes\) under database key [0-9a-f]{32}/);
  assert.notEqual(keyIdOf(), before);
  assert.ok(!fs.readFileSync(path.join(d.dataPath, 'confab.db')).subarray(0, 4096).equals(oldPage1));
  // The independent decryptor finds the marker under the new key; the daemon starts on it.
  const pages = await run(PYTHON, [DECRYPT, '--master-key', d.masterKeyFile, '--data-dir', d.dataPath, 'pages']);
  assert.equal(pages.code, 0, pages.stderr);
  assert.ok(pages.stdout.includes(marker));
  const again = await startDaemon({ binary: FIXTURE, dataDir: dir, stdin: 'pipe' });
  daemons.push(again);
  assert.equal((await again.stop()).code, 0);
});

test('a key store without its database stops start-up with exit code 2 and deletes no file', async () => {
  const dir = tmpDir('confab-lostdb-');
  const d = await startDaemon({ binary: FIXTURE, dataDir: dir, stdin: 'pipe' });
  daemons.push(d);
  const blob = (await command(d, { blob: { account: 'acct', user: 'alice', text: 'keep me' } })).blob;
  assert.equal((await d.stop()).code, 0);
  fs.renameSync(path.join(d.dataPath, 'confab.db'), path.join(dir, 'moved.db'));
  const r = await refused({ master_key_file: d.masterKeyFile, server: { data_dir: d.dataPath } }, dir);
  assert.deepEqual(r.exit, { code: 2, signal: null });
  assert.match(r.output, /has a key store but no database \(.*confab\.db is missing or empty\): restore the database from a backup/);
  assert.ok(fs.existsSync(blob.path), 'the blob file was deleted');
  assert.ok(!fs.existsSync(path.join(d.dataPath, 'confab.db')));
});
