// SPDX-License-Identifier: Apache-2.0
// SIGHUP reloads [tls] cert_file/key_file: new connections get the new certificate, open
// WebSockets keep theirs and keep working, and a broken file keeps the old certificate in use.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  closeOf, fileSerial, makeCert, normSerial, openWs, pingPong, request, servedSerial, start, stopClean, tmpDir, waitFor,
} from './lib.mjs';

let daemon;
let dir;
let certFile;
let keyFile;
let first;   // {cert, key, serial}
let second;

// Replaces the configured files with `cert`'s (write to a temporary name, then rename).
function install({ cert, key }) {
  for (const [from, to] of [[key, keyFile], [cert, certFile]]) {
    fs.copyFileSync(from, `${to}.new`);
    fs.renameSync(`${to}.new`, to);
  }
}

function countLines(re) {
  return daemon.log().split('\n').filter((l) => re.test(l)).length;
}

before(async () => {
  dir = tmpDir('confab-sighup-');
  first = await makeCert(dir, 'first');
  second = await makeCert(dir, 'second');
  first.serial = await fileSerial(first.cert);
  second.serial = await fileSerial(second.cert);
  assert.notEqual(first.serial, second.serial);
  certFile = path.join(dir, 'server.cert.pem');
  keyFile = path.join(dir, 'server.key.pem');
  install(first);
  daemon = await start({
    dataDir: dir,
    config: {
      tls: { cert_file: certFile, key_file: keyFile },
      websocket: { auth_timeout_ms: 600000 },
    },
  });
});

after(async () => {
  await stopClean(daemon);
});

test('the configured certificate is served', async () => {
  assert.equal(await servedSerial(daemon.ports.https, { ca: [fs.readFileSync(first.cert)] }), first.serial);
  assert.ok(!fs.existsSync(path.join(daemon.dataPath, 'tls', 'cert.pem')), 'a self-signed certificate was created anyway');
});

test('SIGHUP: new connections get the new certificate, an open WebSocket stays up', async () => {
  const ca = [fs.readFileSync(first.cert), fs.readFileSync(second.cert)];
  const { ws } = await openWs(`wss://127.0.0.1:${daemon.ports.https}/api/v1/events`, { ca });
  assert.ok(ws, 'WebSocket not opened');
  await pingPong(ws);

  install(second);
  daemon.proc.kill('SIGHUP');
  await waitFor(async () => (await servedSerial(daemon.ports.https)) === second.serial,
    10000, 'the new certificate on a new connection');
  // Only the new one from now on, verified against it alone.
  assert.equal(await servedSerial(daemon.ports.https, { ca: [fs.readFileSync(second.cert)] }), second.serial);
  const res = await request(daemon.url('/healthz'), { ca: [fs.readFileSync(second.cert)] });
  assert.equal(res.status, 200);

  assert.equal(ws.readyState, ws.OPEN, 'the WebSocket opened before SIGHUP was closed');
  await pingPong(ws);
  // It still has the old certificate: the reload did not touch existing connections.
  assert.equal(normSerial(ws._socket.getPeerCertificate().serialNumber), first.serial);
  // Auth is still pending on it (600 s): the socket is still a working events socket.
  ws.send(JSON.stringify({ type: 'hello' }));
  assert.equal((await closeOf(ws, 5000)).code, 1008);
});

test('SIGHUP with a broken certificate file keeps the old certificate, the daemon stays up', async () => {
  const ca = [fs.readFileSync(second.cert)];
  const { ws } = await openWs(`wss://127.0.0.1:${daemon.ports.https}/api/v1/events`, { ca });
  const refusedBefore = countLines(/not reloaded/);

  fs.writeFileSync(`${certFile}.new`, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
  fs.renameSync(`${certFile}.new`, certFile);
  daemon.proc.kill('SIGHUP');
  await waitFor(() => countLines(/not reloaded/) > refusedBefore, 10000, 'the daemon to log the refused reload');

  assert.equal(daemon.proc.exitCode, null, `the daemon exited:\n${daemon.log()}`);
  assert.equal(await servedSerial(daemon.ports.https, { ca }), second.serial);
  assert.equal((await request(daemon.url('/healthz'), { ca })).status, 200);
  assert.equal(ws.readyState, ws.OPEN);
  await pingPong(ws);

  // A key that does not match the certificate is refused the same way.
  fs.copyFileSync(first.cert, certFile);
  fs.copyFileSync(second.key, keyFile);
  daemon.proc.kill('SIGHUP');
  await waitFor(() => countLines(/not reloaded/) > refusedBefore + 1, 10000, 'the second refused reload');
  assert.equal(await servedSerial(daemon.ports.https, { ca }), second.serial);

  // Fixed files are picked up by the next SIGHUP.
  install(first);
  daemon.proc.kill('SIGHUP');
  await waitFor(async () => (await servedSerial(daemon.ports.https)) === first.serial,
    10000, 'the repaired certificate');
  assert.equal(await servedSerial(daemon.ports.https, { ca: [fs.readFileSync(first.cert)] }), first.serial);
  ws.terminate();
});
