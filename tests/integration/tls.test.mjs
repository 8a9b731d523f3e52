// SPDX-License-Identifier: Apache-2.0
// The HTTPS listener as curl, openssl and Node see it: the self-signed certificate verifies for
// localhost and 127.0.0.1, every HTTPS response carries HSTS and a fresh X-Request-Id, only
// TLS 1.2 and 1.3 are spoken, and the certificate survives a restart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  fileSerial, problemOf, rawTls, parseHttp, request, run, servedSerial, start, stopClean, tmpDir,
} from './lib.mjs';

let daemon;
let dataDir;
let port;

before(async () => {
  dataDir = tmpDir('confab-tls-');
  daemon = await start({ dataDir });
  port = daemon.ports.https;
});

after(async () => {
  await stopClean(daemon);
});

function curl(args) {
  return run('curl', ['-sS', '--max-time', '10', '--cacert', daemon.cert, ...args], { timeout: 15000 });
}

for (const host of ['localhost', '127.0.0.1']) {
  test(`curl trusts the certificate for https://${host}:PORT (SAN) and gets 200 from /healthz`, async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `https://${host}:${port}/healthz`]);
    assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
    assert.equal(r.stdout, '200');
  });
}

test('a host name that is not in the certificate is refused by curl', async () => {
  // Control for the SAN test above: verification is really on.
  const r = await curl(['-o', '/dev/null', '--resolve', `not-in-cert.example:${port}:127.0.0.1`,
    `https://not-in-cert.example:${port}/healthz`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /certificate|subject|name/i);
});

test('every HTTPS response carries Strict-Transport-Security and a fresh X-Request-Id', async () => {
  const ca = [fs.readFileSync(daemon.cert)];
  const cases = [
    { path: '/healthz', status: 200 },
    { path: '/no/such/thing', status: 404 },
    { path: '/healthz', method: 'DELETE', status: 405 },
    { path: '/api/v1/events', status: 426 },
  ];
  const ids = new Set();
  for (const c of cases) {
    const res = await request(daemon.url(c.path), { ca, method: c.method });
    assert.equal(res.status, c.status, `${c.method ?? 'GET'} ${c.path}`);
    const hsts = res.headers['strict-transport-security'];
    assert.ok(hsts, `no HSTS on ${c.status}`);
    assert.match(hsts, /max-age=(\d+)/);
    assert.ok(Number(/max-age=(\d+)/.exec(hsts)[1]) >= 31536000, `HSTS max-age too short: ${hsts}`);
    const id = res.headers['x-request-id'];
    assert.match(id ?? '', /^[0-9a-f]{8,}$/, `X-Request-Id on ${c.status}`);
    assert.ok(!ids.has(id), `X-Request-Id ${id} repeated`);
    ids.add(id);
    if (c.status >= 400) assert.equal(problemOf(res)?.request_id, id);
  }
  // The same request twice still gets two ids.
  const a = await request(daemon.url('/healthz'), { ca });
  const b = await request(daemon.url('/healthz'), { ca });
  assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);

  // A request the parser rejects (400 problem) is an HTTPS response too.
  const bad = await rawTls(port, { ca, chunks: ['BROKEN REQUEST LINE\r\n\r\n'] });
  const parsed = parseHttp(bad.data);
  assert.ok(parsed, `no HTTP response to a malformed request: ${JSON.stringify(bad)}`);
  assert.equal(parsed.status, 400);
  assert.ok(parsed.headers['strict-transport-security'], 'no HSTS on the 400 problem response');
});

test('TLS 1.1 is refused: openssl s_client -tls1_1 fails with a protocol-version alert', async () => {
  // SECLEVEL=0 lets the client really offer TLS 1.1, so the failure is the server's refusal.
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_1',
    '-cipher', 'DEFAULT@SECLEVEL=0'], { timeout: 15000 });
  assert.equal(r.timedOut, false);
  assert.notEqual(r.code, 0, r.stdout);
  assert.match(r.stderr + r.stdout, /protocol version/i);
  assert.match(r.stdout, /Cipher is \(NONE\)/, 'a cipher was negotiated');
});

test('TLS 1.1 is refused: curl --tls-max 1.1 fails', async () => {
  const r = await curl(['--tlsv1.1', '--tls-max', '1.1', '--ciphers', 'DEFAULT@SECLEVEL=0',
    '-o', '/dev/null', `https://localhost:${port}/healthz`]);
  assert.notEqual(r.code, 0);
  assert.equal(r.code, 35, `expected an SSL connect error, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, /protocol version/i);
});

for (const [flag, name] of [['-tls1_2', 'TLSv1.2'], ['-tls1_3', 'TLSv1.3']]) {
  test(`a ${name} handshake succeeds and verifies`, async () => {
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, flag,
      '-servername', 'localhost', '-verify_hostname', 'localhost', '-CAfile', daemon.cert,
      '-verify_return_error', '-brief'], { timeout: 15000, input: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr + r.stdout, new RegExp(`Protocol version: ${name.replace('.', '\\.')}`));
    assert.match(r.stderr + r.stdout, /Verification: OK/);
  });
  test(`curl over ${name} only gets 200`, async () => {
    const v = name.slice(4);
    const r = await curl([`--tlsv${v}`, '--tls-max', v, '-o', '/dev/null', '-w', '%{http_code}',
      `https://localhost:${port}/healthz`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '200');
  });
}

test('the certificate is reused across a restart with the same data directory', async () => {
  const before = await fileSerial(daemon.cert);
  assert.equal(await servedSerial(port, { ca: [fs.readFileSync(daemon.cert)] }), before);
  const stopped = await daemon.stop();
  assert.equal(stopped.code, 0, `daemon exit ${JSON.stringify(stopped)}\n${daemon.log()}`);

  daemon = await start({ dataDir });
  port = daemon.ports.https;
  assert.equal(await fileSerial(daemon.cert), before, 'the certificate file was replaced');
  const served = await servedSerial(port, { ca: [fs.readFileSync(daemon.cert)] });
  assert.equal(served, before, 'the restarted daemon serves another certificate');
  const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/healthz`]);
  assert.equal(r.stdout, '200', r.stderr);
});
