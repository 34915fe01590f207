'use strict';
// Test harness: a real taskd on 127.0.0.1 with a port of its own choosing.
// The binary is $TASKD_BIN (set by the Bazel test) or, when run by hand,
// bazel-bin/services/taskd of this checkout.

const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { Client } = require('..');

const SOURCE_ROOT = path.resolve(__dirname, '..', '..', '..');
const START_TIMEOUT_MS = 15_000;

function taskdBinary() {
  return process.env.TASKD_BIN || path.join(SOURCE_ROOT, 'bazel-bin', 'services', 'taskd');
}

// Starts taskd in memory mode; resolves once it reports its port.
async function startTaskd(extraArgs = []) {
  const proc = spawn(taskdBinary(), ['--listen=127.0.0.1:0', '--metrics-listen=', '--durability=memory', '--threads=1', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`taskd did not report its port within ${START_TIMEOUT_MS} ms:\n${log}`)), START_TIMEOUT_MS);
    const onData = (chunk) => {
      log = (log + chunk).slice(-(64 << 10));
      const m = /serving on \S+ \(port (\d+)\)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('error', (err) => { clearTimeout(timer); reject(err); });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`taskd exited (${code}) before serving:\n${log}`)); });
  });
  const exited = once(proc, 'exit');
  return {
    port,
    target: `127.0.0.1:${port}`,
    proc,
    // Everything taskd wrote so far (for failure messages).
    log: () => log,
    // SIGTERM (graceful) and wait for the exit; resolves to the exit code.
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const [code, sig] = await exited;
      return code === null ? sig : code;
    },
  };
}

// One taskd and a Client on it for a whole test file: started before its
// tests, stopped after them (taskd must exit 0 on SIGTERM). `use(server,
// client)` receives them once started.
function withSharedTaskd(use) {
  const test = require('node:test');
  const assert = require('node:assert/strict');
  let server;
  let client;
  test.before(async () => {
    server = await startTaskd();
    client = new Client({ target: server.target });
    use(server, client);
  });
  test.after(async () => {
    client.close();
    assert.equal(await server.stop(), 0, `taskd exits cleanly on SIGTERM; its log:\n${server.log()}`);
  });
}

// Resolves with `promise`, or rejects after ms naming `what`.
function deadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A promise with its resolve function outside, for handlers to signal tests.
function latch() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

module.exports = { startTaskd, withSharedTaskd, deadline, latch, SOURCE_ROOT, taskdBinary };
