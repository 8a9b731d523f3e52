// SPDX-License-Identifier: Apache-2.0
// /api/v1/events end to end, against confab_events_fixture: the real daemon with a test
// authenticator (tokens test:<account>:<user>) and an event source fed through its stdin
// (tests/fixtures/events_fixture.cc). What a client sees: authentication by header or first
// message, only its own events in the envelope of DESIGN.md, resume by seq (also across a restart
// and during live traffic), resync beyond retention, and the socket's limits.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import readline from 'node:readline';
import WebSocket from 'ws';
import { FIXTURES, startDaemon, waitFor } from '../lib/daemon.mjs';

const FIXTURE = `${FIXTURES}/confab_events_fixture`;
const DEADLINE_MS = 10000;
const fixtures = new Set();
const clients = new Set();

after(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all([...fixtures].map((f) => f.stop()));
  // A restarted fixture reuses its predecessor's directory: this removes every one of them.
  for (const f of fixtures) fs.rmSync(f.dataDir, { recursive: true, force: true });
});

function withDeadline(promise, what, ms = DEADLINE_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Starts the fixture (on `dataDir` if given) and adds emit(), which resolves once the events
// are committed and published, with the stored events [{account_id, user_id, seq, id}].
async function startFixture({ config = {}, dataDir } = {}) {
  const d = await startDaemon({ binary: FIXTURE, config, dataDir, stdin: 'pipe' });
  fixtures.add(d);
  d.proc.stdin.on('error', () => {});  // EPIPE once stopped; emit() then fails by its deadline
  const waiting = new Map();
  let nextId = 1;
  readline.createInterface({ input: d.proc.stdout }).on('line', (line) => {
    let reply;
    try { reply = JSON.parse(line); } catch { return; }
    waiting.get(reply.id)?.(reply);
    waiting.delete(reply.id);
  });
  d.emit = async (to, type = 'message.created', data = {}, actor) => {
    const id = nextId++;
    const replied = new Promise((resolve) => waiting.set(id, resolve));
    d.proc.stdin.write(`${JSON.stringify({ id, emit: { to, type, data, actor } })}\n`);
    const reply = await withDeadline(replied, `the fixture's answer to emit #${id}`);
    assert.ok(reply.ok, `emit failed: ${reply.error}`);
    return reply.events;
  };
  d.emitMany = async (n, to, type, data) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(...await d.emit(to, type, { i, ...data }));
    return out;
  };
  d.ca = fs.readFileSync(d.cert);
  d.wsUrl = (query = '') => `wss://127.0.0.1:${d.ports.https}/api/v1/events${query}`;
  return d;
}

const isEvent = (m) => typeof m.id === 'string';

// A ws client that records every message and its close.
class Client {
  // auth: 'header' (Authorization: Bearer), 'message' (first message {"type":"auth"}) or
  // 'none'; `authorization` sends that Authorization header as it is.
  constructor(d, { token, auth = 'header', query = '', authSince, authorization } = {}) {
    this.messages = [];
    const headers = {};
    if (authorization !== undefined) headers.Authorization = authorization;
    else if (auth === 'header') headers.Authorization = `Bearer ${token}`;
    this.ws = new WebSocket(d.wsUrl(query), { ca: d.ca, headers });
    clients.add(this);
    this.ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'the server sends text messages only');
      this.messages.push(JSON.parse(data.toString('utf8')));
    });
    this.ws.on('error', (e) => { this.error = e; });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => {
      clients.delete(this);
      this.closeInfo = { code, reason: reason.toString() };
      resolve(this.closeInfo);
    }));
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', resolve);
      this.ws.on('unexpected-response', (_, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      this.ws.on('error', reject);
    });
    this.opened.catch(() => {});  // a test that expects the upgrade awaits it
    if (auth === 'message') {
      this.opened.then(() => {
        const msg = { type: 'auth', token };
        if (authSince !== undefined) msg.since = authSince;
        this.ws.send(JSON.stringify(msg));
      }, () => {});
    }
  }
  events() { return this.messages.filter(isEvent); }
  // Waits for a message matching `pred`; fails at once if the socket closes without one.
  async waitMessage(pred, what) {
    return waitFor(() => {
      const m = this.messages.find(pred);
      if (!m && this.closeInfo) throw new Error(`closed ${JSON.stringify(this.closeInfo)} before ${what}`);
      return m;
    }, DEADLINE_MS, what);
  }
  async ready() {
    return this.waitMessage((m) => m.type === 'session.ready', 'session.ready');
  }
  // Resolves once the client holds an event with seq >= `seq`.
  async waitSeq(seq) {
    return this.waitMessage((m) => isEvent(m) && m.seq >= seq, `event seq ${seq}`);
  }
  async closeCode() { return withDeadline(this.closed, 'the close frame'); }
  close() { this.ws.close(1000); return this.closeCode(); }
}

async function connected(d, opts) {
  const c = new Client(d, opts);
  await c.ready();
  return c;
}

function assertEnvelope(e, { seq, type, account, data, actor = null }) {
  assert.deepEqual(Object.keys(e).sort(), ['account_id', 'actor', 'data', 'id', 'seq', 'ts', 'type']);
  assert.match(e.id, /^[0-9a-f]{32}$/);
  assert.equal(e.seq, seq);
  assert.equal(e.type, type);
  assert.equal(e.account_id, account);
  assert.equal(e.actor, actor);
  assert.deepEqual(e.data, data);
  assert.ok(Number.isInteger(e.ts) && Math.abs(Date.now() - e.ts) < 60000, `ts ${e.ts} is not now`);
}

// The events of a client are exactly seqs from..to, each once, in order.
function assertSeqs(events, from, to) {
  const want = [];
  for (let s = from; s <= to; s++) want.push(s);
  assert.deepEqual(events.map((e) => e.seq), want);
}

const ALICE = ['acct', 'alice'];
const BOB = ['acct', 'bob'];

describe('authentication and delivery', () => {
  let d;
  test('start the fixture', async () => {
    d = await startFixture({ config: { websocket: { auth_timeout_ms: 300 } } });
  });

  test('Bearer header: session.ready, then alice\'s events in the envelope, none of bob\'s', async () => {
    const alice = await connected(d, { token: 'test:acct:alice' });
    const ready = alice.messages[0];
    assert.deepEqual(ready, { type: 'session.ready', account_id: 'acct', user_id: 'alice', seq: 0 });

    await d.emit([BOB], 'message.created', { for: 'bob only' });
    const [a1, b2] = await d.emit([ALICE, BOB], 'message.created', { text: 'hi' }, 'carol');
    assert.equal(a1.seq, 1);
    assert.equal(b2.seq, 2);  // seqs are per recipient
    await d.emit([ALICE], 'waiting_room.admitted', { room: 7 });

    await alice.waitSeq(2);
    const evs = alice.events();
    assert.equal(evs.length, 2, JSON.stringify(alice.messages));
    assertEnvelope(evs[0], { seq: 1, type: 'message.created', account: 'acct', data: { text: 'hi' }, actor: 'carol' });
    assert.equal(evs[0].id, a1.id);
    assertEnvelope(evs[1], { seq: 2, type: 'waiting_room.admitted', account: 'acct', data: { room: 7 } });
    assert.ok(alice.messages.every((m) => m.data?.for !== 'bob only'));
    await alice.close();
  });

  test('first message {"type":"auth"} works the same (browser style)', async () => {
    const bob = new Client(d, { token: 'test:acct:bob', auth: 'message' });
    const ready = await bob.ready();
    assert.deepEqual(ready, { type: 'session.ready', account_id: 'acct', user_id: 'bob', seq: 2 });
    const [ev] = await d.emit([BOB], 'call.ringing', { line: 1 });
    await d.emit([ALICE], 'message.created', { for: 'alice only' });
    const [ev2] = await d.emit([BOB], 'call.ended', {});
    await bob.waitSeq(ev2.seq);
    assert.deepEqual(bob.events().map((e) => [e.seq, e.type]), [[ev.seq, 'call.ringing'], [ev2.seq, 'call.ended']]);
    assertEnvelope(bob.events()[0], { seq: 3, type: 'call.ringing', account: 'acct', data: { line: 1 } });
    // A second auth after the session started is an error message, not a new identity.
    bob.ws.send(JSON.stringify({ type: 'auth', token: 'test:acct:alice' }));
    await bob.waitMessage((m) => m.type === 'session.error', 'session.error');
    bob.ws.send(JSON.stringify({ type: 'ping' }));
    await bob.waitMessage((m) => m.type === 'pong', 'pong');
    await bob.close();
  });

  test('the Bearer scheme name is case-insensitive (RFC 9110 §11.1)', async () => {
    const c = new Client(d, { authorization: 'bearer test:acct:carol' });
    const ready = await c.ready();
    assert.equal(ready.user_id, 'carol');
    await c.close();
  });

  test('two sessions of one user both get its events', async () => {
    const a = await connected(d, { token: 'test:acct:alice' });
    const b = new Client(d, { token: 'test:acct:alice', auth: 'message' });
    await b.ready();
    const [ev] = await d.emit([ALICE], 'message.created', { n: 1 });
    await a.waitSeq(ev.seq);
    await b.waitSeq(ev.seq);
    assert.deepEqual(a.events(), b.events());
    await Promise.all([a.close(), b.close()]);
  });

  for (const [name, opts] of [
    ['a wrong Bearer token', { token: 'nope' }],
    ['a Bearer token without a user', { token: 'test:acct:' }],
    ['a non-Bearer Authorization', { authorization: 'Basic dXNlcjpwYXNz' }],
    ['an empty Bearer token', { authorization: 'Bearer ' }],
    ['a wrong token in the first message', { token: 'test:acct', auth: 'message' }],
    ['a first message without a token', { auth: 'none', first: { type: 'auth' } }],
    ['a first message that is not auth', { auth: 'none', first: { type: 'ping' } }],
    ['a first message whose type is not a string', { auth: 'none', first: { type: 5, token: 'test:acct:alice' } }],
    ['a first message that is not JSON', { auth: 'none', first: 'hello' }],
  ]) {
    test(`${name} gets close 1008 and no events`, async () => {
      const c = new Client(d, opts);
      if (opts.first !== undefined) {
        await c.opened;
        c.ws.send(typeof opts.first === 'string' ? opts.first : JSON.stringify(opts.first));
      }
      assert.equal((await c.closeCode()).code, 1008);
      assert.deepEqual(c.messages, []);
    });
  }

  test('a since that is not a non-negative integer gets close 1008', async () => {
    for (const query of ['?since=abc', '?since=-1', '?since=1.5']) {
      const c = new Client(d, { token: 'test:acct:alice', query });
      assert.equal((await c.closeCode()).code, 1008, query);
    }
    const c = new Client(d, { token: 'test:acct:alice', auth: 'message', authSince: -3 });
    assert.equal((await c.closeCode()).code, 1008);
  });

  test('no token at all within websocket.auth_timeout_ms gets close 1008', async () => {
    const c = new Client(d, { auth: 'none' });
    await c.opened;
    assert.equal((await c.closeCode()).code, 1008);
  });
});

describe('resume by seq', () => {
  let d;
  let dataDir;
  let lastSeen = 0;
  const config = { websocket: { send_queue_messages: 16 } };
  test('start the fixture', async () => {
    d = await startFixture({ config });
    dataDir = d.dataDir;
  });

  test('?since=<last seq> gets exactly the missed events in order, then session.ready', async () => {
    const a = await connected(d, { token: 'test:acct:alice' });
    await d.emitMany(3, [ALICE], 'message.created');
    await a.waitSeq(3);
    lastSeen = a.events().at(-1).seq;
    await a.close();

    await d.emitMany(4, [ALICE, BOB], 'message.created', { missed: true });  // alice 4..7
    const b = new Client(d, { token: 'test:acct:alice', query: `?since=${lastSeen}` });
    const ready = await b.ready();
    assert.equal(ready.seq, 7);
    const i = b.messages.indexOf(ready);
    assertSeqs(b.messages.slice(0, i), 4, 7);
    assert.ok(b.messages.slice(0, i).every((e) => e.data.missed === true));
    const [live] = await d.emit([ALICE], 'message.created', { live: true });
    await b.waitSeq(live.seq);
    assertSeqs(b.events(), 4, 8);
    lastSeen = 8;
    await b.close();
  });

  test('the since field of the auth message does the same; since = last seq replays nothing', async () => {
    await d.emitMany(2, [ALICE], 'message.created');  // 9, 10
    const a = new Client(d, { token: 'test:acct:alice', auth: 'message', authSince: lastSeen });
    const ready = await a.ready();
    assert.equal(ready.seq, 10);
    assertSeqs(a.messages.filter(isEvent), 9, 10);
    assert.equal(a.messages.at(-1), ready);
    await a.close();

    const b = new Client(d, { token: 'test:acct:alice', auth: 'message', authSince: 10 });
    assert.deepEqual(await b.ready(), { type: 'session.ready', account_id: 'acct', user_id: 'alice', seq: 10 });
    assert.equal(b.messages.length, 1);
    await b.close();
    lastSeen = 10;
  });

  test('a since beyond the last seq gets session.resync_required', async () => {
    const a = new Client(d, { token: 'test:acct:alice', query: '?since=1000' });
    const ready = await a.ready();
    assert.deepEqual(a.messages, [{ type: 'session.resync_required', seq: 10 }, ready]);
    assert.equal(ready.seq, 10);
    await a.close();
  });

  test('a replay longer than websocket.send_queue_messages is delivered whole, then live events', async () => {
    await d.emitMany(40, [ALICE], 'message.created');  // 11..50
    const a = new Client(d, { token: 'test:acct:alice', query: `?since=${lastSeen}` });
    const ready = await a.ready();
    assert.equal(ready.seq, 50);
    assertSeqs(a.events(), 11, 50);
    const [live] = await d.emit([ALICE], 'message.created', { live: true });
    await a.waitSeq(live.seq);
    assertSeqs(a.events(), 11, 51);
    await a.close();
    lastSeen = 51;
  });

  test('events emitted while a client resumes are neither lost nor duplicated', async (t) => {
    await d.emitMany(150, [ALICE], 'message.created', { before: true });  // 52..201
    // Keep emitting, one commit after the other, while the client connects and replays.
    let stop = false;
    let lastEmitted = 201;
    const committedBeforeReady = [];
    let a;
    const emitter = (async () => {
      while (!stop) {
        const [e] = await d.emit([ALICE], 'message.created', { during: true });
        lastEmitted = e.seq;
        if (a && !a.messages.some((m) => m.type === 'session.ready')) committedBeforeReady.push(e.seq);
      }
    })();
    try {
      await d.emitMany(5, [BOB], 'message.created');  // let the emitter get going
      a = new Client(d, { token: 'test:acct:alice', query: `?since=${lastSeen}` });
      await a.ready();
      await d.emitMany(5, [BOB], 'message.created');  // and run on past the replay
    } finally {
      stop = true;
      await emitter;
    }
    await a.waitSeq(lastEmitted);
    assertSeqs(a.events(), 52, lastEmitted);
    t.diagnostic(`${committedBeforeReady.length} event(s) committed between connect and session.ready`);
    await a.close();
    lastSeen = lastEmitted;
  });

  test('after a restart (SIGTERM, same data directory) seqs keep increasing and resume works', async () => {
    // A client connected at the stop is closed with 1001 and resumes on the next instance.
    const live = await connected(d, { token: 'test:acct:alice', query: `?since=${lastSeen - 3}` });
    assertSeqs(live.events(), lastSeen - 2, lastSeen);
    const stopped = await d.stop('SIGTERM', 10000);
    assert.deepEqual(stopped, { code: 0, signal: null }, d.log());
    assert.equal((await live.closeCode()).code, 1001);
    fixtures.delete(d);

    d = await startFixture({ config, dataDir });
    const [e] = await d.emit([ALICE], 'message.created', { after: 'restart' });
    assert.equal(e.seq, lastSeen + 1);
    const a = new Client(d, { token: 'test:acct:alice', query: `?since=${live.events().at(-1).seq}` });
    const ready = await a.ready();
    assert.equal(ready.seq, lastSeen + 1);
    assertSeqs(a.events(), lastSeen + 1, lastSeen + 1);
    assert.deepEqual(a.events()[0].data, { after: 'restart' });
    const [bob] = await d.emit([BOB], 'message.created');
    assert.equal(bob.seq, 4 + 10 + 1);  // bob's stream continues too
    const [next] = await d.emit([ALICE], 'message.created');
    await a.waitSeq(next.seq);
    assertSeqs(a.events(), lastSeen + 1, lastSeen + 2);
    await a.close();
  });
});

describe('retention', () => {
  test('beyond events.retention_count a resuming client gets session.resync_required', async () => {
    const config = { events: { retention_count: 5 } };
    let d = await startFixture({ config });
    await d.emitMany(12, [ALICE], 'message.created');
    await d.emitMany(2, [BOB], 'message.created');
    assert.equal((await d.stop('SIGTERM')).code, 0, d.log());
    fixtures.delete(d);
    // Retention runs at start-up when its interval has passed since the last run (and then every
    // interval): an interval of one second and a restart make it happen now.
    const restarted = { events: { retention_count: 5 }, retention: { interval_seconds: 1 } };
    d = await startFixture({ config: restarted, dataDir: d.dataDir });
    await waitFor(() => /retention job events: removed 7 item\(s\)/.test(d.log()), DEADLINE_MS, 'the retention run');

    for (const since of [0, 1, 6]) {  // 1..7 are gone: a gap the client cannot fill
      const c = new Client(d, { token: 'test:acct:alice', query: `?since=${since}` });
      const ready = await c.ready();
      assert.deepEqual(c.messages, [{ type: 'session.resync_required', seq: 12 }, ready], `since=${since}`);
      assert.equal(ready.seq, 12);
      await c.close();
    }
    for (const since of [7, 10, 12]) {  // 8..12 are kept
      const c = new Client(d, { token: 'test:acct:alice', query: `?since=${since}` });
      await c.ready();
      assertSeqs(c.events(), since + 1, 12);
      await c.close();
    }
    const bob = new Client(d, { token: 'test:acct:bob', auth: 'message', authSince: 0 });
    await bob.ready();
    assertSeqs(bob.events(), 1, 2);
    await bob.close();
    // The purge does not reset the stream: the next seq is still 13.
    const [e] = await d.emit([ALICE], 'message.created');
    assert.equal(e.seq, 13);
  });
});

describe('limits', () => {
  let d;
  test('start the fixture', async () => {
    d = await startFixture({
      config: {
        websocket: { max_message_bytes: 1024, messages_per_second: 5, message_burst: 5, send_queue_messages: 16 },
      },
    });
  });

  test('a message over websocket.max_message_bytes gets 1009; another client keeps receiving', async () => {
    const big = await connected(d, { token: 'test:acct:alice' });
    const other = await connected(d, { token: 'test:acct:alice', auth: 'message' });
    big.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(2000) }));
    assert.equal((await big.closeCode()).code, 1009);
    const [e] = await d.emit([ALICE], 'message.created', { still: 'here' });
    await other.waitSeq(e.seq);
    assert.deepEqual(other.events().at(-1).data, { still: 'here' });
    // Within the limit is fine.
    other.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(900) }));
    await other.waitMessage((m) => m.type === 'pong', 'pong');
    await other.close();
  });

  test('invalid or too deeply nested JSON gets session.error naming the rule; the socket stays usable', async () => {
    const c = await connected(d, { token: 'test:acct:alice' });
    c.ws.send('['.repeat(40) + ']'.repeat(40));
    const deep = await c.waitMessage((m) => m.type === 'session.error', 'session.error (depth)');
    assert.match(deep.detail, /nesting is deeper than 32/);
    c.ws.send('{"type":');
    await c.waitMessage((m) => m.type === 'session.error' && /not valid JSON/.test(m.detail), 'session.error (syntax)');
    c.ws.send('{"type":"ping"}');
    await c.waitMessage((m) => m.type === 'pong', 'pong after bad input');
    const [e] = await d.emit([ALICE], 'message.created', { after: 'bad input' });
    await c.waitSeq(e.seq);
    await c.close();
  });

  test('deeply nested JSON as the first message gets 1008 before any event', async () => {
    const c = new Client(d, { auth: 'none' });
    await c.opened;
    c.ws.send('{"type":"auth","token":' + '['.repeat(100) + ']'.repeat(100) + '}');
    assert.equal((await c.closeCode()).code, 1008);
    assert.equal(c.events().length, 0);
  });

  test('invalid UTF-8 in a text message gets 1007', async () => {
    const c = await connected(d, { token: 'test:acct:alice' });
    c.ws.send(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), { binary: false });  // {"\xc3("}
    assert.equal((await c.closeCode()).code, 1007);
  });

  test('a binary message gets 1003', async () => {
    const c = await connected(d, { token: 'test:acct:alice' });
    c.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
    assert.equal((await c.closeCode()).code, 1003);
  });

  test('more than websocket.messages_per_second gets 1008', async () => {
    const c = await connected(d, { token: 'test:acct:alice' });
    for (let i = 0; i < 30; i++) c.ws.send('{"type":"ping"}');
    const { code, reason } = await c.closeCode();
    assert.equal(code, 1008);
    assert.match(reason, /rate/);
    // At most the burst is answered (queued pongs may be dropped for the close).
    const pongs = c.messages.filter((m) => m.type === 'pong').length;
    assert.ok(pongs <= 6, `${pongs} pongs`);
  });

  test('a consumer that stops reading is closed with 1008 once its send queue overflows', async (t) => {
    const slow = await connected(d, { token: 'test:acct:slow' });
    slow.ws.pause();  // stop reading: the kernel buffers fill, then the server's queue
    const pad = 'y'.repeat(256 * 1024);
    let emitted = 0;
    const overflowed = () => /send queue overflow/.test(d.log());
    while (!overflowed()) {
      assert.ok(emitted < 400, 'no overflow after 100 MiB');
      for (let i = 0; i < 4; i++) emitted = (await d.emit([['acct', 'slow']], 'message.created', { pad }))[0].seq;
    }
    // The server has decided; now read again: what was sent arrives, then the close.
    slow.ws.resume();
    const { code, reason } = await slow.closeCode();
    assert.equal(code, 1008);
    assert.match(reason, /send queue overflow/);
    const got = slow.events();
    t.diagnostic(`closed after ${got.length} of ${emitted} events of 256 KiB`);
    assert.ok(got.length < emitted, `${got.length} of ${emitted} events before the close`);
    assertSeqs(got, 1, got.length);
    // It resumes from its last seq and loses nothing.
    const again = new Client(d, { token: 'test:acct:slow', query: `?since=${got.length}` });
    const ready = await again.ready();
    assert.equal(ready.seq, emitted);
    assertSeqs(again.events(), got.length + 1, emitted);
    await again.close();
  });
});
