// SPDX-License-Identifier: Apache-2.0
// /api/v1/events as a WebSocket client sees it: foreign Origins are refused with 403 before the
// upgrade, the allowed origin or no Origin gets through, plain HTTP gets 426, and an
// unauthenticated socket is closed with 1008 (timeout, wrong first message, refused token).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { closeOf, openWs, pingPong, problemOf, request, start, stopClean } from './lib.mjs';

const AUTH_TIMEOUT_MS = 300;

function wssUrl(daemon, query = '') {
  return `wss://127.0.0.1:${daemon.ports.https}/api/v1/events${query}`;
}

describe('default allowed origin (public_url)', () => {
  let daemon;
  let ca;
  before(async () => {
    daemon = await start({ config: { websocket: { auth_timeout_ms: AUTH_TIMEOUT_MS } } });
    ca = [fs.readFileSync(daemon.cert)];
  });
  after(async () => { await stopClean(daemon); });

  for (const origin of ['https://evil.example', 'http://127.0.0.1', 'null',
    // Same host, other scheme or port: another origin.
    () => daemon.publicUrl.replace('https:', 'http:'),
    () => `https://127.0.0.1:${daemon.ports.https + 1}`,
    () => `${daemon.publicUrl}.evil.example`]) {
    test(`Origin ${typeof origin === 'string' ? origin : origin.toString().replace(/^\(\) => /, '')} gets 403 before the upgrade`, async () => {
      const o = typeof origin === 'function' ? origin() : origin;
      const r = await openWs(wssUrl(daemon), { ca, origin: o });
      assert.ok(!r.ws, `upgrade with Origin ${o} succeeded`);
      assert.equal(r.status, 403);
      assert.equal(problemOf(r)?.status, 403);
      assert.equal(problemOf(r).request_id, r.headers['x-request-id']);
      assert.ok(r.headers['strict-transport-security']);
    });
  }

  for (const [name, origin] of [['the public_url origin', (d) => d.publicUrl],
    ['the public_url origin in upper case', (d) => d.publicUrl.toUpperCase()],
    ['no Origin', () => undefined]]) {
    test(`${name} is upgraded (101) and the socket works`, async () => {
      const r = await openWs(wssUrl(daemon), { ca, origin: origin(daemon) });
      assert.ok(r.ws, `refused with ${r.status}: ${r.body}`);
      // The 101 is an HTTPS response like any other.
      assert.ok(r.ws.upgradeHeaders['strict-transport-security'], 'no HSTS on the 101');
      assert.match(r.ws.upgradeHeaders['x-request-id'] ?? '', /^[0-9a-f]{8,}$/);
      await pingPong(r.ws);
      r.ws.terminate();
    });
  }

  test('a plain GET of /api/v1/events gets 426 Upgrade Required', async () => {
    const res = await request(daemon.url('/api/v1/events'), { ca });
    assert.equal(res.status, 426);
    assert.match(res.headers.upgrade ?? '', /websocket/i);
    const p = problemOf(res);
    assert.equal(p?.status, 426);
    assert.equal(p.request_id, res.headers['x-request-id']);
  });

  test(`an unauthenticated socket is closed with 1008 after auth_timeout_ms (${AUTH_TIMEOUT_MS} ms)`, async () => {
    const opened = Date.now();
    const r = await openWs(wssUrl(daemon), { ca });
    assert.ok(r.ws);
    const closed = await closeOf(r.ws, 5000);
    assert.equal(closed.code, 1008, `close ${closed.code} ${closed.reason}`);
    const waited = closed.at - opened;
    assert.ok(waited >= AUTH_TIMEOUT_MS - 50, `closed after ${waited} ms, before the timeout`);
    assert.ok(waited < AUTH_TIMEOUT_MS + 3000, `closed only after ${waited} ms`);
  });

  for (const [name, message] of [
    ['a first message that is not {"type":"auth"}', JSON.stringify({ type: 'subscribe', topic: 'x' })],
    ['a first message that is not JSON', 'hello'],
    ['an auth message without a token', JSON.stringify({ type: 'auth' })],
  ]) {
    test(`${name} gets 1008`, async () => {
      const r = await openWs(wssUrl(daemon), { ca });
      const sent = Date.now();
      r.ws.send(message);
      const closed = await closeOf(r.ws, 5000);
      assert.equal(closed.code, 1008, `close ${closed.code} ${closed.reason}`);
      assert.ok(closed.at - sent < AUTH_TIMEOUT_MS, 'closed by the timeout, not by the message');
    });
  }

  test('an auth message with a token gets 1008 (no identity provider accepts any token)', async () => {
    const r = await openWs(wssUrl(daemon), { ca });
    const messages = [];
    r.ws.on('message', (m) => messages.push(String(m)));
    const sent = Date.now();
    r.ws.send(JSON.stringify({ type: 'auth', token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' }));
    const closed = await closeOf(r.ws, 5000);
    assert.equal(closed.code, 1008, `close ${closed.code} ${closed.reason}`);
    assert.ok(closed.at - sent < AUTH_TIMEOUT_MS, 'closed by the timeout, not by the refusal');
    assert.ok(!messages.some((m) => m.includes('session.ready')), 'a refused token got a session');
  });

  test('a Bearer header with a token gets 1008 too', async () => {
    const r = await openWs(wssUrl(daemon), { ca, headers: { Authorization: 'Bearer some-token' } });
    assert.ok(r.ws, `refused with ${r.status}`);
    const closed = await closeOf(r.ws, 5000);
    assert.equal(closed.code, 1008);
  });

  test('the daemon still serves after all of this', async () => {
    const res = await request(daemon.url('/healthz'), { ca });
    assert.equal(res.status, 200);
  });
});

describe('websocket.allowed_origins', () => {
  let daemon;
  let ca;
  const allowed = ['https://app.example.com', 'http://localhost:3000'];
  before(async () => {
    daemon = await start({ config: { websocket: { auth_timeout_ms: AUTH_TIMEOUT_MS, allowed_origins: allowed } } });
    ca = [fs.readFileSync(daemon.cert)];
  });
  after(async () => { await stopClean(daemon); });

  for (const origin of allowed) {
    test(`listed origin ${origin} is upgraded`, async () => {
      const r = await openWs(wssUrl(daemon), { ca, origin });
      assert.ok(r.ws, `refused with ${r.status}: ${r.body}`);
      await pingPong(r.ws);
      r.ws.terminate();
    });
  }

  for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'http://app.example.com',
    'http://localhost:3001']) {
    test(`unlisted origin ${origin} gets 403`, async () => {
      const r = await openWs(wssUrl(daemon), { ca, origin });
      assert.ok(!r.ws, 'upgraded');
      assert.equal(r.status, 403);
    });
  }
});

describe('origins with the default port written out', () => {
  // Browsers serialise an Origin without its scheme's default port (RFC 6454 §6.2), whatever
  // form the operator wrote in the configuration.
  let daemon;
  let ca;
  before(async () => {
    daemon = await start({ config: { server: { public_url: 'https://chat.example.com:443' } } });
    ca = [fs.readFileSync(daemon.cert)];
  });
  after(async () => { await stopClean(daemon); });

  for (const origin of ['https://chat.example.com', 'https://chat.example.com:443', 'https://Chat.Example.com']) {
    test(`public_url https://chat.example.com:443 admits Origin ${origin}`, async () => {
      const r = await openWs(wssUrl(daemon), { ca, origin });
      assert.ok(r.ws, `refused with ${r.status}: ${r.body}`);
      r.ws.terminate();
    });
  }
  for (const origin of ['https://chat.example.com:8443', 'http://chat.example.com', 'https://chat.example.com:4430']) {
    test(`public_url https://chat.example.com:443 refuses Origin ${origin}`, async () => {
      const r = await openWs(wssUrl(daemon), { ca, origin });
      assert.equal(r.status, 403);
    });
  }
});

describe('allowed_origins entries with the default port written out', () => {
  let daemon;
  let ca;
  before(async () => {
    daemon = await start({ config: { websocket: { allowed_origins: ['http://localhost:80', 'https://app.example.com'] } } });
    ca = [fs.readFileSync(daemon.cert)];
  });
  after(async () => { await stopClean(daemon); });

  for (const origin of ['http://localhost', 'http://localhost:80', 'https://app.example.com:443']) {
    test(`Origin ${origin} is admitted`, async () => {
      const r = await openWs(wssUrl(daemon), { ca, origin });
      assert.ok(r.ws, `refused with ${r.status}: ${r.body}`);
      r.ws.terminate();
    });
  }
  test('Origin http://localhost:8080 is refused', async () => {
    assert.equal((await openWs(wssUrl(daemon), { ca, origin: 'http://localhost:8080' })).status, 403);
  });
});
