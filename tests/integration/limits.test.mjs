// SPDX-License-Identifier: Apache-2.0
// Bad input is answered clearly (status, problem+json with the request id) while well-behaved
// clients keep being served: malformed requests, oversized bodies and headers, slowloris,
// request floods, unknown paths and methods. And SIGTERM: exit 0 in time, WebSockets get 1001.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import {
  closeOf, openWs, parseHttp, problemOf, rawTls, request, start, stopClean, waitFor, within,
} from './lib.mjs';

// A problem response as a user sees it: status, media type, JSON members, matching request id.
function assertProblem(res, status, what) {
  assert.equal(res.status, status, `${what}: status ${res.status} ${res.body}`);
  assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/, `${what}: Content-Type`);
  const p = JSON.parse(res.body);
  assert.equal(p.status, status, `${what}: JSON status`);
  assert.equal(typeof p.title, 'string');
  assert.ok(typeof p.detail === 'string' && p.detail.length > 0, `${what}: detail`);
  assert.match(p.request_id, /^[0-9a-f]{8,}$/, `${what}: request_id`);
  assert.equal(p.request_id, res.headers['x-request-id'], `${what}: request_id = X-Request-Id`);
  assert.ok(res.headers['strict-transport-security'], `${what}: HSTS`);
  return p;
}

describe('bad requests', () => {
  let daemon;
  let ca;
  before(async () => {
    daemon = await start({
      config: {
        limits: {
          body_bytes: 2048, header_bytes: 4096, request_timeout_ms: 1000,
          requests_per_second: 10000, request_burst: 10000,
        },
      },
    });
    ca = [fs.readFileSync(daemon.cert)];
  });
  after(async () => { await stopClean(daemon); });

  for (const [name, text] of [
    ['a garbage request line', 'GARBAGE\r\n\r\n'],
    ['a request line with an unknown version', 'GET /healthz HTTP/9.9\r\nHost: localhost\r\n\r\n'],
    ['a request line with spaces in the target', 'GET /a b c HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nHost localhost\r\n\r\n'],
    ['binary bytes', '\x00\x01\x02\x03\xff\xfe\r\n\r\n'],
    ['a target that is not a path', 'GET healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'],
    ['conflicting Content-Length headers', 'POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['an HTTP/1.1 request without Host', 'GET /healthz HTTP/1.1\r\n\r\n'],
    ['an HTTP/1.1 request with two Host headers', 'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['a WebSocket upgrade without Sec-WebSocket-Key',
      'GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n'],
  ]) {
    test(`${name} gets 400 problem+json (raw TLS)`, async () => {
      const r = await rawTls(daemon.ports.https, { ca, chunks: [text], timeout: 5000 });
      const res = parseHttp(r.data);
      assert.ok(res, `no HTTP response: ${JSON.stringify(r)}`);
      const p = assertProblem(res, 400, name);
      assert.ok(p.detail.length > 0);
      // The parser's own wording stays in the log.
      assert.doesNotMatch(p.detail, /bad method|bad target|bad version|bad field|beast|asio/i);
    });
  }

  test('a WebSocket upgrade with another protocol version gets 426 problem+json', async () => {
    const r = await rawTls(daemon.ports.https, { ca, timeout: 5000, chunks: [
      'GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n'] });
    const res = parseHttp(r.data);
    assert.ok(res, `no HTTP response: ${JSON.stringify(r)}`);
    assertProblem(res, 426, 'version 12');
    assert.equal(res.headers['sec-websocket-version'], '13');
  });

  test('a body over limits.body_bytes gets 413 (Content-Length)', async () => {
    const res = await request(daemon.url('/api/v1/anything'), {
      ca, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: 'x'.repeat(4096),
    });
    assertProblem(res, 413, 'Content-Length body');
  });

  test('a body over limits.body_bytes gets 413 (chunked)', async () => {
    const res = await request(daemon.url('/api/v1/anything'), {
      ca, method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      body: 'y'.repeat(3000),
    });
    assertProblem(res, 413, 'chunked body');
  });

  test('a body at the limit is not refused as too large', async () => {
    const res = await request(daemon.url('/healthz'), { ca, method: 'POST', body: 'z'.repeat(2048) });
    assert.notEqual(res.status, 413);
    assertProblem(res, 405, 'POST /healthz');
  });

  for (const size of [8 * 1024, 64 * 1024]) {
    test(`a ${size / 1024} KiB header over limits.header_bytes gets 431`, async () => {
      const res = await request(daemon.url('/healthz'), { ca, headers: { 'X-Big': 'a'.repeat(size) } });
      assertProblem(res, 431, `${size} byte header`);
    });
  }

  test('slowloris clients are cut off after request_timeout_ms while /healthz stays fast', async () => {
    const port = daemon.ports.https;
    // Ten clients that send a partial header, then one more header line every 100 ms.
    const slow = Array.from({ length: 10 }, () => new Promise((resolve) => {
      const started = Date.now();
      let data = '';
      let timer;
      const sock = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
        sock.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
        timer = setInterval(() => { if (sock.writable) sock.write('X-Slow: a\r\n'); }, 100);
      });
      const deadline = setTimeout(() => sock.destroy(), 6000);
      const done = (how) => {
        clearInterval(timer);
        clearTimeout(deadline);
        sock.destroy();
        resolve({ how, data, ms: Date.now() - started });
      };
      sock.setEncoding('latin1');
      sock.on('data', (d) => { data += d; });
      sock.on('end', () => done('end'));
      sock.on('close', () => done('close'));
      sock.on('error', (e) => done(`error ${e.code}`));
    }));

    // Meanwhile a well-behaved client asks for /healthz on fresh connections.
    const latencies = [];
    let stop = false;
    const normal = (async () => {
      while (!stop) {
        const t0 = Date.now();
        const res = await request(daemon.url('/healthz'), { ca, timeout: 3000 });
        assert.equal(res.status, 200);
        latencies.push(Date.now() - t0);
      }
    })();
    const results = await Promise.all(slow);
    stop = true;
    await normal;

    // Each slow client reads a 408 problem saying why, then the connection closes.
    for (const r of results) {
      assert.ok(r.ms < 4000, `slow client still connected after ${r.ms} ms`);
      assert.ok(r.ms >= 900, `slow client cut after ${r.ms} ms, before request_timeout_ms`);
      const res = parseHttp(r.data);
      assert.ok(res, `no HTTP answer for the slow client: ${JSON.stringify(r.data)}`);
      assertProblem(res, 408, 'slowloris');
    }
    assert.ok(latencies.length >= 5, `only ${latencies.length} /healthz requests in the meantime`);
    const worst = Math.max(...latencies);
    assert.ok(worst < 1000, `a /healthz request took ${worst} ms during the slowloris attack`);
  });

  test('an unknown path gets 404 problem+json', async () => {
    const res = await request(daemon.url('/no/such/path?x=1'), { ca });
    assertProblem(res, 404, 'unknown path');
    const slash = await request(daemon.url('/healthz/'), { ca });
    assertProblem(slash, 404, 'trailing slash');
  });

  test('a wrong method gets 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await request(daemon.url('/healthz'), { ca, method });
      assertProblem(res, 405, `${method} /healthz`);
      const allow = (res.headers.allow ?? '').split(',').map((m) => m.trim());
      assert.ok(allow.includes('GET'), `Allow: ${res.headers.allow}`);
      assert.ok(!allow.includes(method), `Allow lists ${method}`);
    }
    const head = await request(daemon.url('/healthz'), { ca, method: 'HEAD' });
    assert.equal(head.status, 200);
  });

  test('after all of this, a normal client is still served', async () => {
    const res = await request(daemon.url('/healthz'), { ca });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).status, 'ok');
  });
});

describe('request flood (limits.requests_per_second = 20, request_burst = 20)', () => {
  let daemon;
  let ca;
  before(async () => {
    daemon = await start({ config: { limits: { requests_per_second: 20, request_burst: 20 } } });
    ca = [fs.readFileSync(daemon.cert)];
  });
  after(async () => { await stopClean(daemon); });

  test('a flood from one address gets 429 with Retry-After and problem+json, then recovers', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 4, ca });
    const get = () => new Promise((resolve, reject) => {
      const req = https.get(daemon.url('/healthz'), { agent, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
    // A well-behaved client at another loopback address keeps being served during the flood.
    let flooding = true;
    const bystander = (async () => {
      const statuses = [];
      while (flooding) {
        statuses.push((await request(daemon.url('/healthz'), { ca, localAddress: '127.0.0.2', timeout: 3000 })).status);
        // A polite client: 10 requests a second, well under its own limit of 20.
        await new Promise((r) => setTimeout(r, 100));
      }
      return statuses;
    })();
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 120 }, get));
    const seconds = (Date.now() - t0) / 1000;
    flooding = false;
    const bystanderStatuses = await bystander;
    agent.destroy();
    assert.ok(bystanderStatuses.length >= 1, 'the other client sent nothing');
    assert.deepEqual(bystanderStatuses.filter((s) => s !== 200), [], 'the other address was limited too');

    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    assert.equal(ok + limited.length, 120, `other statuses: ${results.map((r) => r.status)}`);
    assert.ok(ok >= 20, `only ${ok} requests served: the burst is 20`);
    assert.ok(ok <= 20 + Math.ceil(20 * seconds) + 1, `${ok} requests served in ${seconds} s`);
    assert.ok(limited.length > 0, 'no request was limited');
    for (const r of limited) {
      assertProblem(r, 429, 'flood');
      const retry = r.headers['retry-after'];
      assert.match(retry ?? '', /^\d+$/, `Retry-After: ${retry}`);
      assert.ok(Number(retry) >= 1 && Number(retry) <= 2, `Retry-After: ${retry}`);
    }
    // Once the client slows down it is served again.
    const retryMs = Number(limited[0].headers['retry-after']) * 1000;
    await waitFor(async () => (await request(daemon.url('/healthz'), { ca })).status === 200,
      retryMs + 2000, 'a 200 after Retry-After');
  });
});

describe('limits.connections = 4', () => {
  let daemon;
  let ca;
  before(async () => {
    daemon = await start({
      config: { limits: { connections: 4, body_bytes: 2048 }, websocket: { auth_timeout_ms: 300 } },
    });
    ca = [fs.readFileSync(daemon.cert)];
  });
  after(async () => { await stopClean(daemon); });

  function connect() {
    return new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: daemon.ports.https, ca, servername: 'localhost' },
        () => resolve({ socket: s }));
      s.on('error', (e) => resolve({ error: e.code ?? String(e) }));
      s.on('close', () => resolve({ error: 'closed' }));
    });
  }

  test('connections over the limit are refused, and every kind of ended connection frees its slot', async () => {
    const wss = `wss://127.0.0.1:${daemon.ports.https}/api/v1/events`;
    // Connections that end in all the ways there are; none may keep counting afterwards.
    for (let i = 0; i < 2; i++) {
      await rawTls(daemon.ports.https, { ca, chunks: ['GARBAGE\r\n\r\n'], timeout: 3000 });
      await request(daemon.url('/x'), { ca, method: 'POST', body: 'x'.repeat(5000) });
      await request(daemon.url('/x'), { ca, headers: { 'X-Big': 'a'.repeat(20000) } });
      assert.equal((await openWs(wss, { ca, origin: 'https://evil.example' })).status, 403);
      const { ws } = await openWs(wss, { ca });
      assert.equal((await closeOf(ws)).code, 1008);
      await new Promise((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: daemon.ports.https, rejectUnauthorized: false,
          minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
        s.on('error', resolve);
        s.on('secureConnect', () => { s.destroy(); resolve(); });
      });
      await request(daemon.url('/healthz'), { ca });
    }
    // Four connections fit (they are served), the fifth is closed at once.
    let open = [];
    await waitFor(async () => {
      for (const c of open) c.socket?.destroy();
      open = await Promise.all([connect(), connect(), connect(), connect()]);
      return open.every((c) => c.socket);
    }, 5000, 'four connections at once (a slot is still counted)');
    const fifth = await connect();
    assert.ok(!fifth.socket, 'a fifth connection was accepted');
    for (const c of open) {
      c.data = '';
      c.socket.on('data', (d) => { c.data += d; });
      c.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    }
    await waitFor(() => open.every((c) => c.data.startsWith('HTTP/1.1 200')), 5000,
      'the four connections to be served');
    for (const c of open) c.socket.destroy();
    // Their slots come back.
    await waitFor(async () => (await request(daemon.url('/healthz'), { ca }).catch(() => ({}))).status === 200,
      5000, 'a new connection after the others closed');
  });

  test('pipelined requests on one connection are answered in order', async () => {
    const r = await rawTls(daemon.ports.https, {
      ca,
      chunks: ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
      timeout: 5000,
    });
    assert.deepEqual([...r.data.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['200', '404', '200']);
    assert.ok(r.closed, 'Connection: close was not honoured');
  });
});

describe('SIGTERM', () => {
  test('exits 0 within shutdown_grace_ms; an open WebSocket gets 1001, idle connections are closed', async () => {
    const grace = 5000;
    const daemon = await start({
      config: { server: { shutdown_grace_ms: grace }, websocket: { auth_timeout_ms: 600000 } },
    });
    try {
      const ca = [fs.readFileSync(daemon.cert)];
      const { ws } = await openWs(`wss://127.0.0.1:${daemon.ports.https}/api/v1/events`, { ca });
      assert.ok(ws);
      // An idle keep-alive HTTPS connection, as a browser leaves behind.
      const idle = tls.connect({ host: '127.0.0.1', port: daemon.ports.https, ca, servername: 'localhost' });
      let idleData = '';
      const idleClosed = new Promise((resolve) => idle.on('close', () => resolve(Date.now())));
      idle.on('error', () => {});
      idle.setEncoding('latin1');
      idle.on('data', (d) => { idleData += d; });
      idle.on('secureConnect', () => idle.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n'));
      await waitFor(() => /\r\n\r\n\{"status":"ok"\}/.test(idleData), 5000, 'the keep-alive response');

      const t0 = Date.now();
      daemon.proc.kill('SIGTERM');
      const closed = await closeOf(ws, grace);
      assert.equal(closed.code, 1001, `close ${closed.code} ${closed.reason}`);
      const exit = await within(daemon.exited, grace + 2000);
      const took = Date.now() - t0;
      assert.deepEqual(exit, { code: 0, signal: null }, daemon.log());
      assert.ok(took < grace, `exit took ${took} ms, not within the grace period of ${grace} ms`);
      const idleAt = await within(idleClosed, 1000, null);
      assert.ok(idleAt, 'the idle connection was not closed');
      assert.match(daemon.log(), /stopping/);
    } finally {
      await daemon.stop('SIGKILL');
    }
  });
});
