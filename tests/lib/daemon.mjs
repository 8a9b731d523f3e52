// SPDX-License-Identifier: Apache-2.0
// Starts the built confabd (or a fixture server) on port 0 with a temporary data directory and
// waits for its --ready-file; every wait has a deadline, nothing sleeps blindly.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CONFABD = process.env.CONFABD;
export const FIXTURES = process.env.CONFAB_FIXTURES;

// The test harness's own variables (tests/CMakeLists.txt) are not daemon settings, and confabd
// refuses unknown CONFAB_* variables: they are not passed on (an explicit `env` still can).
// Daemons started without a master key file create the embedded default under
// $XDG_CONFIG_HOME/confab: point that at a scratch directory, never at the user's own.
export const SCRATCH_CONFIG_HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'confab-xdg-'));
process.on('exit', () => fs.rmSync(SCRATCH_CONFIG_HOME, { recursive: true, force: true }));
export const HARNESS_ENV = {
  CONFAB_FIXTURES: undefined, CONFAB_SOURCE: undefined, XDG_CONFIG_HOME: SCRATCH_CONFIG_HOME,
};

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
  // Top-level keys (plain values) come before the first [section].
  for (const [key, value] of Object.entries(config)) {
    if (typeof value !== 'object') out += `${key} = ${JSON.stringify(value)}\n`;
  }
  for (const [section, values] of Object.entries(config)) {
    if (typeof values !== 'object') continue;
    out += `[${section}]\n`;
    for (const [k, v] of Object.entries(values)) out += `${k} = ${JSON.stringify(v)}\n`;
  }
  return out;
}

// A new random master key in `file` (64 hex digits, mode 0600), as an operator would make one.
export function writeMasterKey(file) {
  fs.writeFileSync(file, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  return file;
}

// Starts `binary` (default: confabd). `config` is {section: {key: value}} merged over ports 0;
// plain values are top-level keys. Unless `config.master_key_file` is given (or set to null for
// the embedded default), a fresh master key is written beside the data directory, never inside.
// `stdin: 'pipe'` gives the process a writable proc.stdin (fixtures read commands from it).
// Returns {ports, dataDir, cert, proc, log(), stop(signal), url(path)}.
export async function startDaemon({ binary = CONFABD, config = {}, dataDir, env = {}, args = [], stdin = 'ignore' } = {}) {
  dataDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'confab-test-'));
  const merged = { ...config, server: { https_port: 0, http_port: 0, metrics_port: 0, ...(config.server ?? {}) } };
  merged.server.data_dir ??= path.join(dataDir, 'var');
  if (merged.master_key_file === undefined) {
    const keyFile = path.join(dataDir, 'master.key');
    if (!fs.existsSync(keyFile)) writeMasterKey(keyFile);
    merged.master_key_file = keyFile;
  } else if (merged.master_key_file === null) {
    delete merged.master_key_file;
  }
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
    masterKeyFile: merged.master_key_file,
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
