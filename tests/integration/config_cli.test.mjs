// SPDX-License-Identifier: Apache-2.0
// confabd's command line as an operator meets it: --version, one clear line and exit code 2 for
// a bad configuration (file or environment), --check-config, and --log-format json.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CONFABD } from '../lib/daemon.mjs';
import { CLEAN_ENV, rawTls, request, run, tmpDir, waitFor, within } from './lib.mjs';

const dirs = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(prefix = 'confab-cli-') {
  const d = tmpDir(prefix);
  dirs.push(d);
  return d;
}

// Writes a config file whose data_dir is inside `dir`, plus `extra` TOML.
function configFile(dir, extra = '', server = '') {
  const file = path.join(dir, 'confabd.toml');
  fs.writeFileSync(file, `[server]\ndata_dir = ${JSON.stringify(path.join(dir, 'var'))}\n` +
    `https_port = 0\nhttp_port = 0\nmetrics_port = 0\n${server}\n${extra}`);
  return file;
}

test('--version exits 0 and prints the version', async () => {
  const r = await run(CONFABD, ['--version'], { timeout: 10000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^confabd \d+\.\d+\.\d+\b/);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  assert.equal(r.stderr, '');
});

const badConfigs = [
  { name: 'https_port = 70000', file: '[server]\nhttps_port = 70000\n', key: 'server.https_port' },
  { name: 'https_port = -1', file: '[server]\nhttps_port = -1\n', key: 'server.https_port' },
  { name: 'https_port given as a string', file: '[server]\nhttps_port = "8443"\n', key: 'server.https_port' },
  { name: 'an unknown key', file: '[server]\nhttps_prot = 8443\n', key: 'server.https_prot' },
  { name: 'an unknown section', file: '[sever]\nhttps_port = 8443\n', key: 'sever.https_port' },
  { name: 'a top-level key outside any section', file: 'https_port = 8443\n', key: 'https_port' },
  { name: 'limits.body_bytes = 0', file: '[limits]\nbody_bytes = 0\n', key: 'limits.body_bytes' },
  { name: 'a host name as https_address', file: '[server]\nhttps_address = "localhost"\n', key: 'server.https_address' },
  { name: 'public_url with a path', file: '[server]\npublic_url = "https://chat.example.com/app"\n', key: 'server.public_url' },
  { name: 'public_url over http', file: '[server]\npublic_url = "http://chat.example.com"\n', key: 'server.public_url' },
  { name: 'an allowed origin that is not an origin', file: '[websocket]\nallowed_origins = ["chat.example.com"]\n', key: 'websocket.allowed_origins' },
  { name: 'cert_file without key_file', file: '[tls]\ncert_file = "/etc/ssl/x.pem"\n', key: 'tls.cert_file' },
  { name: 'log.level = loud', file: '[log]\nlevel = "loud"\n', key: 'log.level' },
  { name: 'CONFAB_SERVER_HTTPS_PORT=abc', env: { CONFAB_SERVER_HTTPS_PORT: 'abc' }, key: /server\.https_port|CONFAB_SERVER_HTTPS_PORT/ },
  { name: 'CONFAB_SERVER_HTTPS_PORT=99999', env: { CONFAB_SERVER_HTTPS_PORT: '99999' }, key: /server\.https_port|CONFAB_SERVER_HTTPS_PORT/ },
  { name: 'CONFAB_LIMITS_BODY_BYTES=1k', env: { CONFAB_LIMITS_BODY_BYTES: '1k' }, key: /limits\.body_bytes|CONFAB_LIMITS_BODY_BYTES/ },
  { name: 'an unknown CONFAB_ variable', env: { CONFAB_SERVER_HTTPS_PROT: '1' }, key: 'CONFAB_SERVER_HTTPS_PROT' },
];

for (const c of badConfigs) {
  for (const mode of [[], ['--check-config']]) {
    test(`${mode.join(' ') || 'start'} with ${c.name}: exit code 2 and one line naming the key`, async () => {
      const dir = scratch();
      // The section's own keys go below the generated [server] header; duplicates are avoided
      // by putting [server] overrides in their own file.
      const file = path.join(dir, 'confabd.toml');
      fs.writeFileSync(file, c.file ?? `[server]\ndata_dir = ${JSON.stringify(path.join(dir, 'var'))}\nhttps_port = 0\nhttp_port = 0\nmetrics_port = 0\n`);
      const r = await run(CONFABD, ['--config', file, '--data-dir', path.join(dir, 'var'), ...mode],
        { timeout: 10000, env: c.env ?? {} });
      assert.equal(r.timedOut, false, 'confabd kept running');
      assert.equal(r.code, 2, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
      if (typeof c.key === 'string') assert.ok(lines[0].includes(c.key), `the line does not name ${c.key}: ${lines[0]}`);
      else assert.match(lines[0], c.key);
      assert.equal(r.stdout, '');
      assert.ok(!fs.existsSync(path.join(dir, 'var')), 'a bad configuration still created the data directory');
    });
  }
}

test('a TOML syntax error: exit 2, one line with the file and line number', async () => {
  const dir = scratch();
  const file = path.join(dir, 'broken.toml');
  fs.writeFileSync(file, '[server]\nhttps_port = \n');
  const r = await run(CONFABD, ['--config', file], { timeout: 10000 });
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0].includes(`${file}:2`), lines[0]);
});

test('--check-config exits 0 on a good config, prints the effective settings, does not start', async () => {
  const dir = scratch();
  const file = configFile(dir, '[limits]\nbody_bytes = 4096\n', 'public_url = "https://chat.example.com"');
  const r = await run(CONFABD, ['--config', file, '--check-config'], {
    timeout: 10000, env: { CONFAB_LIMITS_REQUEST_BURST: '321' },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /configuration OK/);
  assert.match(r.stdout, /body_bytes = 4096/);
  assert.match(r.stdout, /request_burst = 321/);
  assert.match(r.stdout, /public_url = "https:\/\/chat\.example\.com"/);
  assert.ok(!fs.existsSync(path.join(dir, 'var')), '--check-config created the data directory');
});

test('--check-config exits 0 without any config file (the defaults are valid)', async () => {
  const dir = scratch();
  const r = await run(CONFABD, ['--check-config'], { timeout: 10000, cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /configuration OK/);
});

test('a port already in use: confabd exits non-zero with a line naming the address', async () => {
  const dir = scratch();
  const busy = net.createServer();
  await new Promise((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const { port } = busy.address();
  try {
    const file = configFile(dir);
    const r = await run(CONFABD, ['--config', file, '--log-format', 'json'], {
      timeout: 15000, env: { CONFAB_SERVER_HTTPS_PORT: String(port) },
    });
    assert.equal(r.timedOut, false);
    assert.notEqual(r.code, 0);
    const last = JSON.parse(r.stderr.trimEnd().split('\n').at(-1));
    assert.equal(last.level, 'critical');
    assert.ok(last.msg.includes(`127.0.0.1:${port}`), last.msg);
  } finally {
    busy.close();
  }
});

test('--log-format json: every stderr line is a JSON object, also for odd paths and errors', async () => {
  // A data directory whose name needs escaping in JSON, and a broken certificate whose reload
  // error is logged: free text in log lines must not break the format.
  const dir = scratch('confab-json-"quoted"\\dir-');
  const certFile = path.join(dir, 'cert "x".pem');
  const keyFile = path.join(dir, 'key.pem');
  const gen = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-days', '2', '-keyout', keyFile, '-out', certFile], { timeout: 15000 });
  assert.equal(gen.code, 0, gen.stderr);
  const file = configFile(dir, `[tls]\ncert_file = ${JSON.stringify(certFile)}\nkey_file = ${JSON.stringify(keyFile)}\n` +
    '[log]\nlevel = "debug"\n');
  const readyFile = path.join(dir, 'ready.json');
  const proc = spawn(CONFABD, ['--config', file, '--ready-file', readyFile, '--log-format', 'json'], {
    env: { ...process.env, ...CLEAN_ENV }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const ready = await waitFor(() => fs.existsSync(readyFile) && JSON.parse(fs.readFileSync(readyFile, 'utf8')),
      15000, 'the ready file');
    const ca = [fs.readFileSync(certFile)];
    // Some traffic: a good request, a 404, a malformed request, a failed handshake.
    assert.equal((await request(`https://127.0.0.1:${ready.https}/healthz`, { ca })).status, 200);
    assert.equal((await request(`https://127.0.0.1:${ready.https}/nope`, { ca })).status, 404);
    await rawTls(ready.https, { ca, chunks: ['BAD "REQUEST\r\n\r\n'], timeout: 5000 });
    await run('openssl', ['s_client', '-connect', `127.0.0.1:${ready.https}`, '-tls1_1'], { timeout: 10000 });
    // A refused certificate reload is logged with the OpenSSL error.
    fs.writeFileSync(certFile, 'garbage\n');
    proc.kill('SIGHUP');
    await waitFor(() => /not reloaded/.test(stderr), 10000, 'the refused reload in the log');
    proc.kill('SIGTERM');
    const exit = await within(exited, 10000);
    assert.deepEqual(exit, { code: 0, signal: null });
  } finally {
    proc.kill('SIGKILL');
  }
  assert.equal(stdout, '');
  const lines = stderr.split('\n').filter((l) => l.length > 0);
  assert.ok(lines.length >= 4, `only ${lines.length} log lines:\n${stderr}`);
  for (const line of lines) {
    let obj;
    assert.doesNotThrow(() => { obj = JSON.parse(line); }, `not JSON: ${line}`);
    assert.equal(typeof obj, 'object');
    assert.equal(typeof obj.msg, 'string', line);
    assert.equal(typeof obj.level, 'string', line);
  }
  // The escaped text comes back intact.
  const msgs = lines.map((l) => JSON.parse(l).msg);
  assert.ok(msgs.some((m) => m.includes(dir)), `no log line names the data directory ${dir}`);
  assert.ok(msgs.some((m) => /not reloaded/.test(m)));
});
