'use strict';
// TLS and bearer tokens end to end: certificates made here with openssl,
// taskd with TLS and a token file, a Client and a Worker with tlsCa and a
// token (the worker's from $TASKD_TOKEN); a plain loopback taskd with tokens
// (the per-call metadata path).

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Client, Worker, TaskdError, UnavailableError, isLoopbackTarget } = require('..');
const { startTaskd, deadline } = require('./harness');

const DEADLINE_MS = 20_000;
const dir = fs.mkdtempSync(path.join(process.env.TEST_TMPDIR || os.tmpdir(), 'taskd-node-sec-'));
const file = (name) => path.join(dir, name);
const token = `tdk_${crypto.randomBytes(16).toString('hex')}`;
let tlsServer;
let tlsTarget; // localhost:<port>: by name, as the README does (an IP is not a valid TLS server name)
let plainServer;
const clients = [];

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore', timeout: 60_000 });
}

// ca.pem, other-ca.pem and server.pem/.key (localhost, 127.0.0.1) by ca.
function makeCerts() {
  for (const [name, cn] of [['ca', 'taskd test CA'], ['other-ca', 'unrelated CA']]) {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
      '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=${cn}`);
  }
  fs.writeFileSync(file('server.ext'), 'subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  openssl('x509', '-req', '-sha256', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.pem');
}

function client(options) {
  const c = new Client({ callTimeoutMs: DEADLINE_MS, ...options });
  clients.push(c);
  return c;
}

test.before(async () => {
  makeCerts();
  const hash = crypto.createHash('sha256').update(token).digest('hex');
  fs.writeFileSync(file('tokens.txt'), `sha256:${hash} node-test submit,read,work\n`);
  tlsServer = await startTaskd([`--tls-cert=${file('server.pem')}`, `--tls-key=${file('server.key')}`,
    `--auth-tokens=${file('tokens.txt')}`]);
  tlsTarget = `localhost:${tlsServer.port}`;
  plainServer = await startTaskd([`--auth-tokens=${file('tokens.txt')}`]);
});

test.after(async () => {
  for (const c of clients) c.close();
  if (tlsServer) assert.equal(await tlsServer.stop(), 0, tlsServer.log());
  if (plainServer) assert.equal(await plainServer.stop(), 0, plainServer.log());
  fs.rmSync(dir, { recursive: true, force: true });
});

test('with the CA and a valid token, a submit is served by a worker', async () => {
  const c = client({ target: tlsTarget, tlsCa: file('ca.pem'), token });
  const saved = process.env.TASKD_TOKEN;
  process.env.TASKD_TOKEN = token; // the worker's token comes from the environment
  let worker;
  try {
    worker = new Worker({ target: tlsTarget, tlsCa: file('ca.pem'), queues: ['sec'], handleSignals: false });
  } finally {
    if (saved === undefined) delete process.env.TASKD_TOKEN; else process.env.TASKD_TOKEN = saved;
  }
  worker.handle('upper', (ctx) => ctx.payload.toString().toUpperCase());
  const running = worker.run();
  try {
    const t = await c.submit('upper', 'hello', { queue: 'sec' });
    const result = await deadline(t.result({ timeoutMs: DEADLINE_MS }), DEADLINE_MS, 'the result');
    assert.equal(result.toString(), 'HELLO');
  } finally {
    await worker.stop({ graceMs: 0 });
    await running;
  }
});

test('no token or an unknown one is UNAUTHENTICATED', async () => {
  for (const t of ['', 'tdk_unknown']) {
    const c = client({ target: tlsTarget, tlsCa: file('ca.pem'), token: t });
    await assert.rejects(c.submit('upper', 'x', { queue: 'sec' }),
      (err) => err instanceof TaskdError && err.code === 'UNAUTHENTICATED' && /SubmitTask/.test(err.message));
  }
});

test('a client that does not trust the CA is refused', async () => {
  const c = client({ target: tlsTarget, tlsCa: file('other-ca.pem'), token });
  await assert.rejects(c.submit('upper', 'x', { queue: 'sec' }), (err) => err instanceof UnavailableError);
});

test('a token without TLS goes only to a loopback target', async () => {
  const c = client({ target: plainServer.target, token });
  assert.ok((await c.submit('noop', '', { queue: 'sec-plain' })).id);
  const anonymous = client({ target: plainServer.target, token: '' });
  await assert.rejects(anonymous.submit('noop', '', { queue: 'sec-plain' }), (err) => err.code === 'UNAUTHENTICATED');
  for (const make of [(o) => new Client(o), (o) => new Worker(o)]) {
    assert.throws(() => make({ target: 'taskd.example.com:50051', token }),
      { name: 'TypeError', message: /options\.token: refusing to send a token to taskd\.example\.com:50051 without TLS/ });
  }
  assert.throws(() => new Client({ target: plainServer.target, tlsCert: file('server.pem') }), /tlsCert and tlsKey go together/);
  assert.throws(() => new Client({ tlsCa: file('missing.pem') }), /options\.tlsCa: cannot read/);
  assert.ok(isLoopbackTarget('localhost:1') && isLoopbackTarget('[::1]:1') && isLoopbackTarget('dns:///127.0.0.1:1'));
  assert.ok(!isLoopbackTarget('127.example.com:1') && !isLoopbackTarget('10.0.0.7:50051'));
});
