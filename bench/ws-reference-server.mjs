// SPDX-License-Identifier: Apache-2.0
// The reference for the WebSocket memory figure: the smallest useful Node `ws` server that holds
// WSS connections on /api/v1/events with the same certificate and TLS policy as confabd.
// Usage: node ws-reference-server.mjs CERT KEY READY_FILE
// Binds 127.0.0.1:0 and writes {"port":N,"pid":N} to READY_FILE once listening; stops on SIGTERM.
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/package.json', import.meta.url));
const { WebSocketServer } = require('ws');

const [cert, key, readyFile] = process.argv.slice(2);
if (!readyFile) {
  console.error('usage: ws-reference-server.mjs CERT KEY READY_FILE');
  process.exit(2);
}

// Same policy as src/net/tls_context.cc: TLS 1.2/1.3, ECDHE + AEAD, server preference.
const server = https.createServer({
  cert: fs.readFileSync(cert),
  key: fs.readFileSync(key),
  minVersion: 'TLSv1.2',
  ciphers:
    'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:' +
    'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:' +
    'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305',
  honorCipherOrder: true,
  ecdhCurve: 'X25519:P-256:P-384',
});
const wss = new WebSocketServer({ server, path: '/api/v1/events', perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data) => ws.send(data.toString()));
});

server.listen(0, '127.0.0.1', () => {
  const tmp = `${readyFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ port: server.address().port, pid: process.pid }));
  fs.renameSync(tmp, readyFile);
});
process.on('SIGTERM', () => {
  for (const c of wss.clients) c.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
