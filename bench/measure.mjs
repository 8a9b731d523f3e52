// SPDX-License-Identifier: Apache-2.0
// The measuring half of `make bench`. bench/run builds confabd, starts confabd, nginx and the
// Node `ws` reference server (and stops them all); this script only measures and reports:
//   1. RSS of confabd idle, with N open WebSocket connections, and after they closed;
//      the same N connections against the Node `ws` reference server;
//   2. wrk rounds alternating confabd GET /healthz and nginx GET /healthz (a static file);
//   3. a summary table on stdout, and the results block of docs/benchmarks.md rewritten.
// Every wait has a deadline; every wrk run is bounded by its own -d plus a margin.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/package.json', import.meta.url));
const WebSocket = require('ws');

const env = process.env;
const need = (k) => {
  if (!env[k]) throw new Error(`bench/measure.mjs: ${k} is not set (run it through bench/run)`);
  return env[k];
};
const cfg = {
  confabPid: Number(need('CONFAB_PID')),
  confabPort: Number(need('CONFAB_HTTPS')),
  confabMetrics: Number(need('CONFAB_METRICS')),
  nginxPid: Number(need('NGINX_PID')),
  nginxPort: Number(need('NGINX_PORT')),
  nginxWorkers: Number(need('NGINX_WORKERS')),
  fixturePid: Number(env.FIXTURE_PID || 0),
  fixturePort: Number(env.FIXTURE_HTTPS || 0),
  fixtureMetrics: Number(env.FIXTURE_METRICS || 0),
  refPid: Number(need('REF_PID')),
  refPort: Number(need('REF_PORT')),
  cert: need('BENCH_CERT'),
  rounds: Number(env.BENCH_ROUNDS ?? 5),
  duration: Number(env.BENCH_DURATION ?? 10),
  warmup: Number(env.BENCH_WARMUP ?? 3),
  conns: Number(env.BENCH_CONNECTIONS ?? 32),
  wsCount: Number(env.BENCH_WS ?? 1000),
  doc: env.BENCH_DOC ?? '',
  wrkLua: new URL('./wrk-json.lua', import.meta.url).pathname,
  confabThreads: Number(env.CONFAB_THREADS ?? 2),
  configNote: env.BENCH_CONFIG_NOTE ?? '',
};
const ca = fs.readFileSync(cfg.cert);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log('bench:', ...a);

async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ---- /proc readings ------------------------------------------------------------------------

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function childPids(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(d));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

// user + system CPU seconds of the processes, all threads included.
function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);  // utime, stime (fields 14, 15 of stat)
  }
  return ticks / CLK_TCK;
}

// Machine-wide CPU counters: how busy both cores were and how much the hypervisor stole.
function machineCpu() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { total, idle: idle + iowait, steal };
}

// ---- HTTP (wrk) ----------------------------------------------------------------------------

const running = new Set();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const p of running) {
      try { process.kill(-p.pid, 'SIGTERM'); } catch { /* already gone */ }
    }
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

function runWrk(url, seconds) {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${cfg.conns}`, `-d${seconds}s`, '--latency', '-s', cfg.wrkLua, url];
    // bash's `times` prints the CPU time of its finished children: wrk's own cost, exactly.
    // Its own process group, so that an interrupted run can stop wrk with its wrapper.
    const p = spawn('bash', ['-c', 'wrk "$@"; rc=$?; times; exit $rc', 'bash', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(p);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => {
      try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, (seconds + 20) * 1000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      running.delete(p);
      const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (code !== 0 || !line) {
        reject(new Error(`wrk ${args.join(' ')} exited ${code}:\n${out}`));
        return;
      }
      const times = [...out.matchAll(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/gm)].pop();
      const wrkCpu = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : NaN;
      resolve({ ...JSON.parse(line.slice('BENCH_JSON '.length)), wrkCpu, raw: out });
    });
  });
}

async function measureHttp(target, seconds) {
  const pids = target.pids();
  const cpu0 = cpuSeconds(pids);
  const m0 = machineCpu();
  const r = await runWrk(target.url, seconds);
  const m1 = machineCpu();
  const cpu1 = cpuSeconds(pids);
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  const wall = r.duration_us / 1e6;
  const serverCpu = cpu1 - cpu0;
  const dt = m1.total - m0.total || 1;
  const ncpu = os.cpus().length;
  const machineBusyPct = ((dt - (m1.idle - m0.idle)) / dt) * 100 * ncpu;
  return {
    rps: r.requests / wall,
    requests: r.requests,
    p50: r.latency_us.p50 / 1000,
    p99: r.latency_us.p99 / 1000,
    max: r.latency_us.max / 1000,
    errors,
    errorDetail: r.errors,
    serverCpuPct: (serverCpu / wall) * 100,
    serverUsPerReq: r.requests ? (serverCpu / r.requests) * 1e6 : NaN,
    wrkCpuPct: (r.wrkCpu / wall) * 100,
    wrkUsPerReq: r.requests ? (r.wrkCpu / r.requests) * 1e6 : NaN,
    machineBusyPct,
    // What neither the server nor wrk used: other people's builds, this script, the kernel's
    // softirq work not charged to either process.
    othersPct: machineBusyPct - (serverCpu / wall) * 100 - (r.wrkCpu / wall) * 100,
    stealPct: ((m1.steal - m0.steal) / dt) * 100 * ncpu,
  };
}

// ---- WebSocket -----------------------------------------------------------------------------

// Opens `count` WSS connections, at most 50 handshakes in flight. With `token(i)`, each one
// authenticates with an Authorization: Bearer header and counts as open at its session.ready.
// Resolves with the open sockets; `dropped()` counts those that closed afterwards (none may, for
// the figure to mean anything).
async function openSockets(url, count, token) {
  const sockets = [];
  let dropped = 0;
  let next = 0;
  const openOne = (i) => new Promise((resolve, reject) => {
    const headers = token ? { Authorization: `Bearer ${token(i)}` } : {};
    const ws = new WebSocket(url, { ca, perMessageDeflate: false, handshakeTimeout: 15000, headers });
    const opened = () => {
      ws.on('close', () => { dropped += 1; });
      resolve(ws);
    };
    if (!token) {
      ws.once('open', opened);
    } else {
      const onMessage = (data) => {
        let type;
        try { type = JSON.parse(data.toString()).type; } catch { /* not JSON */ }
        if (type === 'session.ready') {
          ws.off('message', onMessage);
          opened();
        }
      };
      ws.on('message', onMessage);
      ws.once('close', (code, reason) => reject(new Error(`${url}: closed ${code} ${reason} before session.ready`)));
    }
    ws.once('unexpected-response', (_req, res) => reject(new Error(`${url}: HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  });
  const worker = async () => {
    while (next < count) {
      const i = next++;
      sockets.push(await openOne(i));
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  return { sockets, dropped: () => dropped };
}

async function closeSockets(sockets) {
  await Promise.all(sockets.map((ws) => new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', resolve);
    ws.close(1000);
    setTimeout(() => { ws.terminate(); resolve(); }, 5000).unref();
  })));
}

function metricValue(port, name) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const m = new RegExp(`^${name}(?:\\{\\})? (\\S+)$`, 'm').exec(body);
        resolve(m ? Number(m[1]) : 0);
      });
    }).on('error', reject);
  });
}

// RSS after the process has had a second to settle (allocations, kernel socket buffers).
async function settledRss(pid) {
  await sleep(1000);
  return rssKiB(pid);
}

async function measureWebSocket({ name, pid, url, serverCount, token, what }) {
  const idle = await settledRss(pid);
  const t0 = Date.now();
  const { sockets, dropped } = await openSockets(url, cfg.wsCount, token);
  const openMs = Date.now() - t0;
  if (serverCount) {
    await waitFor(async () => (await serverCount()) === cfg.wsCount, 20000,
      `${name} to count ${cfg.wsCount} WebSocket connections`);
  }
  const held = await settledRss(pid);
  const stillOpen = sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
  if (dropped() > 0 || stillOpen !== cfg.wsCount) {
    throw new Error(`${name}: ${dropped()} of ${cfg.wsCount} WebSocket connections closed early`);
  }
  await closeSockets(sockets);
  if (serverCount) {
    await waitFor(async () => (await serverCount()) === 0, 20000, `${name} to close its WebSocket connections`);
  }
  const after = await settledRss(pid);
  return { name, what, idle, held, after, openMs, perConnKiB: (held - idle) / cfg.wsCount };
}

// ---- statistics and formatting ---------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const fmt = (v, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
const mib = (kib) => (kib / 1024).toFixed(1);

function table(header, rows) {
  const all = [header, ...rows].map((r) => r.map(String));
  const w = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  return [line(all[0]), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...all.slice(1).map(line)].join('\n');
}

function machineFacts() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (/^model name\s*:\s*(.+)$/m.exec(cpuinfo) ?? [])[1] ?? 'unknown';
  const mhz = (/^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo) ?? [])[1];
  const version = (cmd, args, re) => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    return (re.exec(out) ?? [])[1] ?? '?';
  };
  let commit = '?';
  try {
    commit = execFileSync('git', ['describe', '--always', '--dirty'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString().trim();
  } catch { /* not a git checkout */ }
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    model,
    mhz,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    commit,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nginx: version('nginx', ['-v'], /nginx\/(\S+)/),
    wrk: version('wrk', ['-v'], /wrk (\S+)/),
    openssl: version('openssl', ['version'], /OpenSSL (\S+)/),
    node: process.versions.node,
  };
}

function tlsParams(port) {
  try {
    const out = execFileSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', cfg.cert],
      { input: '', stdio: ['pipe', 'pipe', 'pipe'], timeout: 5000 }).toString();
    const proto = (/Protocol\s*:\s*(\S+)/.exec(out) ?? /New, (TLSv[\d.]+)/.exec(out) ?? [])[1] ?? '?';
    const cipher = (/Cipher\s*(?:is|:)\s*(\S+)/.exec(out) ?? [])[1] ?? '?';
    const group = (/(?:Server Temp Key|Negotiated TLS1.3 group): (\S+?),?\s/.exec(out) ?? [])[1] ?? '?';
    return `${proto} ${cipher} ${group}`;
  } catch {
    return '?';
  }
}

// ---- main ------------------------------------------------------------------------------------

const facts = machineFacts();
log(`${facts.nproc} cores (${facts.model}), load ${facts.load}, commit ${facts.commit}`);

const confab = {
  name: 'confabd',
  url: `https://127.0.0.1:${cfg.confabPort}/healthz`,
  pids: () => [cfg.confabPid],
  tls: tlsParams(cfg.confabPort),
};
const nginx = {
  name: 'nginx',
  url: `https://127.0.0.1:${cfg.nginxPort}/healthz`,
  pids: () => [cfg.nginxPid, ...childPids(cfg.nginxPid)],
  tls: tlsParams(cfg.nginxPort),
};
log(`TLS negotiated by openssl s_client: confabd ${confab.tls}; nginx ${nginx.tls}`);

// 1. Memory, while confabd has served nothing yet.
const confabIdleAtStart = rssKiB(cfg.confabPid);
const wsRuns = [];
log(`WebSocket: ${cfg.wsCount} connections to confabd (not authenticated)`);
const wsConfab = await measureWebSocket({
  name: 'confabd',
  what: 'open, waiting for {"type":"auth"} (auth_timeout_ms = 600000)',
  pid: cfg.confabPid,
  url: `wss://127.0.0.1:${cfg.confabPort}/api/v1/events`,
  serverCount: () => metricValue(cfg.confabMetrics, 'confab_websocket_connections'),
});
wsRuns.push(wsConfab);
if (cfg.fixturePid) {
  log(`WebSocket: ${cfg.wsCount} authenticated connections to confab_events_fixture`);
  wsRuns.push(await measureWebSocket({
    name: 'confab_events_fixture',
    what: 'authenticated (Bearer test:bench:uN, one user each), subscribed, after session.ready',
    pid: cfg.fixturePid,
    url: `wss://127.0.0.1:${cfg.fixturePort}/api/v1/events`,
    serverCount: () => metricValue(cfg.fixtureMetrics, 'confab_websocket_connections'),
    token: (i) => `test:bench:u${i}`,
  }));
}
log(`WebSocket: ${cfg.wsCount} connections to the Node ws reference server`);
wsRuns.push(await measureWebSocket({
  name: 'Node ws (reference)',
  what: 'open (ws 8, https.createServer, same certificate and TLS policy)',
  pid: cfg.refPid,
  url: `wss://127.0.0.1:${cfg.refPort}/api/v1/events`,
}));

// 2. Throughput and latency, alternating, after one unrecorded warm-up each.
for (const t of [confab, nginx]) {
  log(`warm-up ${t.name} ${cfg.warmup}s`);
  await runWrk(t.url, cfg.warmup);
}
const runs = { confabd: [], nginx: [] };
// Odd rounds run confabd first, even rounds nginx first, so neither always inherits the
// other's after-effects (page cache, CPU frequency, a neighbour's build starting).
for (let round = 1; round <= cfg.rounds; ++round) {
  for (const t of round % 2 ? [confab, nginx] : [nginx, confab]) {
    const r = await measureHttp(t, cfg.duration);
    runs[t.name].push(r);
    log(`round ${round} ${t.name.padEnd(7)} ${fmt(r.rps).padStart(6)} req/s  p50 ${fmt(r.p50, 2)} ms  ` +
      `p99 ${fmt(r.p99, 2)} ms  CPU: server ${fmt(r.serverCpuPct)}% wrk ${fmt(r.wrkCpuPct)}% ` +
      `others ${fmt(r.othersPct)}%  errors ${r.errors}`);
  }
}
const confabAfterLoad = rssKiB(cfg.confabPid);

// 3. Report.
const errors = [...runs.confabd, ...runs.nginx].reduce((a, r) => a + r.errors, 0);
const med = (name, key) => median(runs[name].map((r) => r[key]));
const rpsRatio = med('confabd', 'rps') / med('nginx', 'rps');
const roundRatios = runs.confabd.map((r, i) => r.rps / runs.nginx[i].rps);
const p99Ratio = med('confabd', 'p99') / med('nginx', 'p99');

const roundRows = [];
for (let i = 0; i < cfg.rounds; ++i) {
  for (const name of ['confabd', 'nginx']) {
    const r = runs[name][i];
    roundRows.push([i + 1, name, fmt(r.rps), fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.max, 1),
      fmt(r.serverCpuPct), fmt(r.serverUsPerReq, 1), fmt(r.wrkCpuPct), fmt(r.wrkUsPerReq, 1),
      fmt(r.machineBusyPct), fmt(r.othersPct), fmt(r.stealPct, 1), r.errors]);
  }
}
const roundTable = table(
  ['round', 'server', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'server CPU %', 'server µs/req',
    'wrk CPU %', 'wrk µs/req', 'machine CPU %', 'others %', 'steal %', 'errors'],
  roundRows);
const medianTable = table(
  ['', 'confabd', 'nginx', 'confabd / nginx'],
  [
    ['req/s (median)', fmt(med('confabd', 'rps')), fmt(med('nginx', 'rps')), `**${fmt(rpsRatio, 2)}×** (goal ≥ 0.80×)`],
    ['req/s ratio per round (median)', '', '', `${fmt(median(roundRatios), 2)}× (rounds: ${roundRatios.map((x) => fmt(x, 2)).join(', ')})`],
    ['p50 latency ms (median)', fmt(med('confabd', 'p50'), 2), fmt(med('nginx', 'p50'), 2), `${fmt(med('confabd', 'p50') / med('nginx', 'p50'), 2)}×`],
    ['p99 latency ms (median)', fmt(med('confabd', 'p99'), 2), fmt(med('nginx', 'p99'), 2), `${fmt(p99Ratio, 2)}× (lower is better)`],
    ['server CPU µs per request (median)', fmt(med('confabd', 'serverUsPerReq'), 1), fmt(med('nginx', 'serverUsPerReq'), 1),
      `${fmt(med('confabd', 'serverUsPerReq') / med('nginx', 'serverUsPerReq'), 2)}× (lower is better)`],
    ['wrk CPU µs per request (median)', fmt(med('confabd', 'wrkUsPerReq'), 1), fmt(med('nginx', 'wrkUsPerReq'), 1), ''],
    ['CPU left to others, % of one core (median)', fmt(med('confabd', 'othersPct')), fmt(med('nginx', 'othersPct')), ''],
  ]);
const wsTable = table(
  ['server', 'connections', 'idle RSS MiB', `RSS with ${cfg.wsCount} MiB`, 'KiB per connection', 'RSS after close MiB', `open all (ms)`],
  wsRuns.map((w) => [w.name, w.what, mib(w.idle), mib(w.held), fmt(w.perConnKiB, 1), mib(w.after), w.openMs]));
const memTable = table(
  ['confabd RSS', 'MiB'],
  [['idle, right after start-up (before any request)', mib(confabIdleAtStart)],
    ['idle, after the WebSocket phase', mib(wsConfab.after)],
    ['after all wrk rounds', mib(confabAfterLoad)]]);

const block = `<!-- bench:results:begin (written by bench/run; edit the text outside these markers) -->
### Latest run

- Command: \`make bench\` (${facts.date}, commit \`${facts.commit}\`)
- Machine: ${facts.nproc} cores, \`${facts.model}\`${facts.mhz ? ` (${Number(facts.mhz).toFixed(0)} MHz reported)` : ''}, ${facts.memGiB} GiB RAM, Linux ${facts.kernel}; load average at start ${facts.load}
- Tools: wrk ${facts.wrk}, nginx ${facts.nginx} (worker_processes ${cfg.nginxWorkers}), OpenSSL ${facts.openssl}, Node ${facts.node}; confabd Release, server.threads = ${cfg.confabThreads}
- Load: \`wrk -t1 -c${cfg.conns} -d${cfg.duration}s --latency\`, ${cfg.rounds} rounds alternating confabd / nginx (odd rounds confabd first, even rounds nginx first) after a ${cfg.warmup} s warm-up of each
- TLS as negotiated (openssl s_client): confabd ${confab.tls}; nginx ${nginx.tls}
${cfg.configNote ? `- ${cfg.configNote}\n` : ''}
#### HTTP: GET /healthz over HTTPS, keep-alive

${medianTable}

Per round:

${roundTable}

#### Memory: ${cfg.wsCount} open WebSocket connections (wss://127.0.0.1:PORT/api/v1/events)

${wsTable}

${memTable}
<!-- bench:results:end -->`;

console.log(`\n===== confabd benchmark summary (${facts.date}) =====\n`);
console.log(block.split('\n').slice(1, -1).join('\n'));
if (errors > 0) console.log(`\nWARNING: ${errors} wrk errors (see the errors column); the figures above are suspect.`);

if (cfg.doc) {
  const begin = '<!-- bench:results:begin';
  const end = '<!-- bench:results:end -->';
  let doc = fs.existsSync(cfg.doc) ? fs.readFileSync(cfg.doc, 'utf8') : '# Benchmarks\n\n';
  const b = doc.indexOf(begin);
  const e = doc.indexOf(end);
  doc = b >= 0 && e > b ? doc.slice(0, b) + block + doc.slice(e + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(cfg.doc, doc);
  console.log(`\nbench: results written to ${cfg.doc}`);
}
process.exit(errors > 0 ? 1 : 0);
