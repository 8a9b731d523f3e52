// SPDX-License-Identifier: Apache-2.0
// Client helpers shared by the integration and e2e tests: bounded child processes, HTTPS requests
// with the daemon's certificate as the only trust anchor, raw TLS exchanges and WebSockets.
// Every wait has a deadline; every child process and daemon is killed when the test file ends.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { HARNESS_ENV, startDaemon, waitFor } from '../lib/daemon.mjs';

export { waitFor };

// Children run in their own process group, so that killing one also ends what it started
// (testssl runs many openssl processes).
const children = new Set();
function killGroup(child) {
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
}
process.on('exit', () => {
  for (const c of children) killGroup(c);
});

// The harness's CONFAB_* variables must not reach confabd (it refuses unknown ones).
export const CLEAN_ENV = HARNESS_ENV;

// Runs a command to completion or until `timeout` ms (then SIGKILL). Never rejects.
// `encoding: 'buffer'` gives stdout as a Buffer (binary output), else a string.
export function run(cmd, args, { timeout = 20000, input, env = {}, cwd, encoding } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...CLEAN_ENV, ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    children.add(child);
    let stdout = '';
    const chunks = [];
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => { if (encoding === 'buffer') chunks.push(d); else stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    if (input !== undefined) {
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
    const timer = setTimeout(() => { timedOut = true; killGroup(child); }, timeout);
    child.on('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: null, signal: null, stdout, stderr: stderr + String(error), timedOut, error });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(child);  // anything it left behind
      children.delete(child);
      if (encoding === 'buffer') stdout = Buffer.concat(chunks);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

// startDaemon, remembered so that it is killed even if the test file fails half-way.
// Their temporary directories are removed at exit too.
const daemons = new Set();
const scratchDirs = new Set();
process.on('exit', () => {
  for (const d of daemons) {
    try { d.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true });
});
export async function start(options = {}) {
  const d = await startDaemon(options);
  scratchDirs.add(d.dataDir);
  daemons.add(d);
  d.exited.then(() => daemons.delete(d));
  return d;
}

// SIGTERM; the daemon must exit 0 within `ms` (less than the default 10 s grace period: open
// idle connections must not hold up a shutdown). SIGKILL after that, and fail.
export async function stopClean(daemon, ms = 5000) {
  if (!daemon) return;
  const result = await daemon.stop('SIGTERM', ms);
  assert.deepEqual(result, { code: 0, signal: null },
    `confabd did not exit cleanly within ${ms} ms of SIGTERM:\n${daemon.log()}`);
}

export function tmpDir(prefix = 'confab-it-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  scratchDirs.add(dir);
  return dir;
}

// One HTTPS request on a fresh connection, trusting only `ca`. Resolves {status, headers, body}.
// `localAddress` picks the client's source address (another loopback address, e.g. 127.0.0.2,
// is another client as far as per-address limits go).
export function request(url, { ca, method = 'GET', headers = {}, body, timeout = 10000, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method, headers, ca, agent: false, timeout, localAddress }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeout} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

// Sends one command line to a running confab_events_fixture (started with stdin: 'pipe') and
// waits for its answer, which must say ok.
export async function fixtureCommand(d, cmd) {
  const id = Math.random().toString(36).slice(2);
  const before = d.log().length;
  d.proc.stdin.write(JSON.stringify({ id, ...cmd }) + '\n');
  const line = await waitFor(() => d.log().slice(before).split('\n')
    .find((l) => l.startsWith('{') && l.includes(`"id":"${id}"`)), 15000, 'the fixture answer');
  const reply = JSON.parse(line);
  assert.equal(reply.ok, true, line);
  return reply;
}

// Asserts-friendly view of an RFC 9457 problem response: parsed JSON or null.
export function problemOf(res) {
  const type = res.headers['content-type'] ?? '';
  if (!type.startsWith('application/problem+json')) return null;
  return JSON.parse(res.body);
}

// Opens a TLS connection, writes `chunks` (strings; functions are awaited between them), and
// collects everything the server sends until it closes or `timeout` passes.
// Resolves {data, closed, error, ms}.
export function rawTls(port, { ca, servername = 'localhost', chunks = [], timeout = 10000 } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    let data = '';
    let done = false;
    const sock = tls.connect({ host: '127.0.0.1', port, ca, servername });
    const finish = (closed, error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data, closed, error, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false, null), timeout);
    sock.setEncoding('latin1');
    sock.on('data', (d) => { data += d; });
    sock.on('end', () => finish(true, null));
    sock.on('close', () => finish(true, null));
    sock.on('error', (e) => finish(true, e));
    sock.on('secureConnect', async () => {
      for (const c of chunks) {
        if (done) return;
        if (typeof c === 'function') await c();
        else sock.write(c);
      }
    });
  });
}

// Splits a raw HTTP/1.1 response: {status, headers (lower-case names), body}.
export function parseHttp(text) {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return null;
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers, body: text.slice(end + 4) };
}

// The serial number the server presents on a new TLS connection (upper-case hex, no leading 0s).
export function servedSerial(port, { ca, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca,
      rejectUnauthorized: !!ca });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('TLS handshake timed out')); }, timeout);
    sock.on('secureConnect', () => {
      clearTimeout(timer);
      const serial = normSerial(sock.getPeerCertificate().serialNumber);
      sock.destroy();
      resolve(serial);
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

export function normSerial(s) {
  return String(s).trim().replace(/^serial=/i, '').toUpperCase().replace(/^0+(?=.)/, '');
}

// `openssl x509 -serial -noout` of a PEM file.
export async function fileSerial(certPath) {
  const r = await run('openssl', ['x509', '-in', certPath, '-serial', '-noout'], { timeout: 10000 });
  if (r.code !== 0) throw new Error(`openssl x509 failed: ${r.stderr}`);
  return normSerial(r.stdout);
}

// A fresh self-signed P-256 certificate for localhost / 127.0.0.1 in `dir`.
export async function makeCert(dir, name) {
  const cert = path.join(dir, `${name}.cert.pem`);
  const key = path.join(dir, `${name}.key.pem`);
  const r = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-days', '2', '-keyout', key, '-out', cert], { timeout: 15000 });
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { cert, key };
}

// Opens a WebSocket. Resolves {ws} once open, or {status, headers, body} if the server answered
// the upgrade with an HTTP response instead; rejects on other errors or after `timeout`.
export function openWs(url, { ca, origin, headers, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca, origin, headers, handshakeTimeout: timeout });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`WebSocket ${url}: timed out`)); }, timeout);
    // Record the close as soon as it happens, whoever waits for it later.
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: String(reason), at: Date.now() })));
    ws.on('upgrade', (res) => { ws.upgradeHeaders = res.headers; });
    ws.on('open', () => { clearTimeout(timer); resolve({ ws }); });
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      // The refused connection is of no further use: close it (Node would keep it open).
      const socket = res.socket;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        resolve({ status: res.statusCode, headers: res.headers, body });
        socket.destroy();
        req.destroy();
      });
    });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// Waits for a WebSocket's close (code, reason), failing after `ms`.
export async function closeOf(ws, ms = 10000) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`WebSocket not closed within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([ws.closed, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

// Resolves what `promise` resolves, or `fallback` if that takes more than `ms` (timer cleared).
export async function within(promise, ms, fallback = 'timeout') {
  let timer;
  try {
    return await Promise.race([promise, new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

// Sends a WebSocket ping and waits for the matching pong.
export function pingPong(ws, ms = 5000) {
  return new Promise((resolve, reject) => {
    const payload = `p${Math.random()}`;
    const timer = setTimeout(() => { ws.off('pong', onPong); reject(new Error(`no pong within ${ms} ms`)); }, ms);
    function onPong(data) {
      if (String(data) !== payload) return;
      clearTimeout(timer);
      ws.off('pong', onPong);
      resolve(true);
    }
    ws.on('pong', onPong);
    ws.ping(payload);
  });
}
