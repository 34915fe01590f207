'use strict';
// The package itself: its .proto copy is current, its declarations compile
// and describe what index.js exports.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const taskd = require('..');
const { SOURCE_ROOT } = require('./harness');

const PACKAGE_DIR = path.resolve(__dirname, '..');

test('the shipped taskd.proto equals api/taskd/v1/taskd.proto', () => {
  // $TASKD_API_PROTO is the Bazel runfile; by hand, the checkout's file.
  const api = process.env.TASKD_API_PROTO || path.join(SOURCE_ROOT, 'api', 'taskd', 'v1', 'taskd.proto');
  const shipped = fs.readFileSync(taskd.PROTO_PATH, 'utf8');
  assert.ok(taskd.PROTO_PATH.startsWith(PACKAGE_DIR), 'the proto is loaded from inside the package');
  assert.ok(shipped === fs.readFileSync(api, 'utf8'),
    `${taskd.PROTO_PATH} is stale: copy ${api} over it (make node-proto)`);
});

test('index.d.ts compiles and its usage file type-checks (tsc --noEmit)', () => {
  const tsc = path.join(PACKAGE_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
  let out = '';
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(__dirname, 'tsconfig.json')], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    out = `${err.stdout}${err.stderr}`;
  }
  assert.equal(out, '', 'tsc reports no errors');
});

test('index.d.ts declares exactly the runtime exports', () => {
  const dts = fs.readFileSync(path.join(PACKAGE_DIR, 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export declare (?:class|const|function) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(declared.sort(), Object.keys(taskd).sort());
});
