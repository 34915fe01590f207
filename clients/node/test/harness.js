'use strict';
// Test harness: a real taskd on 127.0.0.1 with a port of its own choosing.
// The binary is $TASKD_BIN (set by the Bazel test) or, when run by hand,
// bazel-bin/services/taskd of this checkout.

const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');

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
      log += chunk;
      const m = /serving on \S+ \(port (\d+)\)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('error', (err) => { clearTimeout(timer); reject(err); });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`taskd exited (${code}) before serving:\n${log}`)); });
  });
  proc.stdout.resume();
  proc.stderr.resume();
  const exited = once(proc, 'exit');
  return {
    port,
    target: `127.0.0.1:${port}`,
    proc,
    // SIGTERM (graceful) and wait for the exit; resolves to the exit code.
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const [code, sig] = await exited;
      return code === null ? sig : code;
    },
  };
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

module.exports = { startTaskd, deadline, latch, SOURCE_ROOT, taskdBinary };
