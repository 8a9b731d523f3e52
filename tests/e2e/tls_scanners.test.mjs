// SPDX-License-Identifier: Apache-2.0
// Third-party TLS scanners against the built confabd: sslscan (cipher list) and testssl
// (protocols). Slow (testssl ~15 s), hence the e2e label. Verdicts come from the reports,
// never from the tools' exit codes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run, start, stopClean, tmpDir } from '../integration/lib.mjs';

let daemon;
let out;

before(async () => {
  out = tmpDir('confab-scan-');
  daemon = await start({ dataDir: out });
});

after(async () => {
  await stopClean(daemon);
});

// Attributes of every <tag .../> element in an XML text (sslscan's flat format).
function elements(xml, tag) {
  const found = [];
  for (const m of xml.matchAll(new RegExp(`<${tag}\\s([^>]*?)/?>`, 'g'))) {
    const attrs = {};
    for (const a of m[1].matchAll(/([\w-]+)="([^"]*)"/g)) attrs[a[1]] = a[2];
    found.push(attrs);
  }
  return found;
}

test('sslscan: only TLS 1.2/1.3; every TLS 1.2 cipher is ECDHE with AES-GCM or ChaCha20-Poly1305', async () => {
  const xmlFile = path.join(out, 'sslscan.xml');
  const r = await run('sslscan', ['--no-colour', `--xml=${xmlFile}`, `127.0.0.1:${daemon.ports.https}`],
    { timeout: 60000 });
  assert.equal(r.timedOut, false, 'sslscan timed out');
  assert.ok(fs.existsSync(xmlFile), `no XML report: ${r.stdout}\n${r.stderr}`);
  const xml = fs.readFileSync(xmlFile, 'utf8');

  const protocols = Object.fromEntries(elements(xml, 'protocol').map((p) => [`${p.type}${p.version}`, p.enabled]));
  assert.deepEqual(protocols, {
    ssl2: '0', ssl3: '0', 'tls1.0': '0', 'tls1.1': '0', 'tls1.2': '1', 'tls1.3': '1',
  }, xml);

  const ciphers = elements(xml, 'cipher');
  const accepted = ciphers.filter((c) => c.status === 'accepted' || c.status === 'preferred');
  assert.ok(accepted.length > 0, 'sslscan found no ciphers at all');
  const versions = new Set(accepted.map((c) => c.sslversion));
  assert.deepEqual([...versions].sort(), ['TLSv1.2', 'TLSv1.3']);
  const tls12 = accepted.filter((c) => c.sslversion === 'TLSv1.2');
  assert.ok(tls12.length > 0);
  for (const c of tls12) {
    assert.match(c.cipher, /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/,
      `TLS 1.2 cipher ${c.cipher} is not ECDHE + AEAD`);
    assert.ok(Number(c.bits) >= 128, `${c.cipher}: ${c.bits} bits`);
  }
  for (const c of accepted) {
    assert.doesNotMatch(c.cipher, /NULL|RC4|DES|MD5|EXPORT|anon|CBC|SHA$/, `weak cipher ${c.cipher}`);
  }
  for (const h of elements(xml, 'heartbleed')) assert.equal(h.vulnerable, '0');
  for (const g of elements(xml, 'renegotiation')) assert.equal(g.supported, '0', 'renegotiation supported');
});

test('testssl: SSLv2, SSLv3, TLS 1.0, TLS 1.1 not offered; no HIGH or CRITICAL finding', async () => {
  const jsonFile = path.join(out, 'testssl.json');
  // Debian's package installs the command as `testssl`; upstream calls it testssl.sh.
  const which = await run('sh', ['-c', 'command -v testssl || command -v testssl.sh'], { timeout: 5000 });
  const testssl = which.stdout.trim();
  assert.ok(testssl, 'testssl is not installed (scripts/install-deps installs testssl.sh)');
  const r = await run(testssl, ['--quiet', '--color', '0', '--warnings', 'off', '--nodns', 'min', '--ip', 'one',
    '--add-ca', daemon.cert, '-p', '--jsonfile-pretty', jsonFile, `127.0.0.1:${daemon.ports.https}`],
  { timeout: 90000, cwd: out });
  assert.equal(r.timedOut, false, `testssl timed out:\n${r.stdout}`);
  assert.ok(fs.existsSync(jsonFile), `no JSON report:\n${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  const findings = (report.scanResult ?? []).flatMap((s) => Object.values(s).filter(Array.isArray).flat());
  assert.ok(findings.length > 0, 'empty testssl report');
  const byId = Object.fromEntries(findings.map((f) => [f.id, f]));
  for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) {
    assert.ok(byId[id], `testssl did not report ${id}`);
    assert.match(byId[id].finding, /^not offered/, `${id}: ${byId[id].finding}`);
  }
  for (const id of ['TLS1_2', 'TLS1_3']) {
    assert.match(byId[id]?.finding ?? '', /^offered/, `${id}: ${byId[id]?.finding}`);
  }
  const bad = findings.filter((f) => ['HIGH', 'CRITICAL'].includes(f.severity));
  assert.deepEqual(bad, [], 'HIGH/CRITICAL findings');
  // testssl could actually talk to the server (not a scan that failed to connect).
  assert.ok(!findings.some((f) => f.id === 'scanProblem'), JSON.stringify(findings.filter((f) => f.id === 'scanProblem')));
});
