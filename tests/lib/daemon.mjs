// SPDX-License-Identifier: Apache-2.0
// Starts the built confabd (or a fixture server) on port 0 with a temporary data directory and
// waits for its --ready-file; every wait has a deadline, nothing sleeps blindly.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CONFABD = process.env.CONFABD;
export const FIXTURES = process.env.CONFAB_FIXTURES;

// The test harness's own variables (tests/CMakeLists.txt) are not daemon settings, and confabd
// refuses unknown CONFAB_* variables: they are not passed on (an explicit `env` still can).
const HARNESS_ENV = { CONFAB_FIXTURES: undefined, CONFAB_SOURCE: undefined };

// Polls `check` every 20 ms until it returns a truthy value or `ms` pass.
export async function waitFor(check, ms = 10000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function toml(config) {
  let out = '';
  for (const [section, values] of Object.entries(config)) {
    out += `[${section}]\n`;
    for (const [k, v] of Object.entries(values)) out += `${k} = ${JSON.stringify(v)}\n`;
  }
  return out;
}

// Starts `binary` (default: confabd). `config` is {section: {key: value}} merged over ports 0.
// `stdin: 'pipe'` gives the process a writable proc.stdin (fixtures read commands from it).
// Returns {ports, dataDir, cert, proc, log(), stop(signal), url(path)}.
export async function startDaemon({ binary = CONFABD, config = {}, dataDir, env = {}, args = [], stdin = 'ignore' } = {}) {
  dataDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'confab-test-'));
  const merged = { ...config, server: { https_port: 0, http_port: 0, metrics_port: 0, ...(config.server ?? {}) } };
  merged.server.data_dir ??= path.join(dataDir, 'var');
  const configFile = path.join(dataDir, 'confabd.toml');
  fs.writeFileSync(configFile, toml(merged));
  const readyFile = path.join(dataDir, `ready-${Date.now()}-${Math.random()}.json`);
  let output = '';
  const proc = spawn(binary, ['--config', configFile, '--ready-file', readyFile, ...args], {
    env: { ...process.env, ...HARNESS_ENV, ...env },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = await Promise.race([
    waitFor(() => fs.existsSync(readyFile) && JSON.parse(fs.readFileSync(readyFile, 'utf8')), 30000, 'ready file'),
    exited.then((e) => { throw new Error(`daemon exited early (${JSON.stringify(e)}):\n${output}`); }),
  ]);
  const cert = path.join(merged.server.data_dir, 'tls', 'cert.pem');
  return {
    ports: ready,
    publicUrl: ready.public_url,
    dataDir,
    dataPath: merged.server.data_dir,
    cert,
    proc,
    exited,
    log: () => output,
    url: (p) => `https://127.0.0.1:${ready.https}${p}`,
    async stop(signal = 'SIGTERM', ms = 20000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}
