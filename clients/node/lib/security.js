'use strict';
// How a Client or Worker connects: TLS, mTLS and a bearer token, as the C++
// tools' --tls-ca/--tls-cert/--tls-key/--token flags.
//
//   new Client({ target: 'taskd.example.com:50051', tlsCa: 'ca.pem', token });
//
// tlsCa: PEM file of the CA that signed the server's certificate (turns TLS
// on; `tls: true` alone uses Node's trusted roots). tlsCert/tlsKey: PEM client
// certificate and key (mTLS). token: bearer token sent as `authorization:
// Bearer <token>`; default process.env.TASKD_TOKEN, '' for none.
//
// The token travels only over TLS (call credentials), or to a loopback
// address without TLS: grpc-js refuses call credentials on an insecure
// channel, so there an interceptor adds the metadata to every call. A token
// for any other address without TLS is a TypeError naming options.token.
// Files and $TASKD_TOKEN are read when the Client or Worker is made.

const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');

const SECURITY_OPTIONS = ['tls', 'tlsCa', 'tlsCert', 'tlsKey', 'token'];

// Whether `target` names a loopback address ("127.0.0.1:50051",
// "localhost:50051", "[::1]:50051", with an optional "dns:///", "ipv4:" or
// "ipv6:").
function isLoopbackTarget(target) {
  for (const prefix of ['dns:///', 'ipv4:', 'ipv6:']) {
    if (target.startsWith(prefix)) { target = target.slice(prefix.length); break; }
  }
  let host;
  if (target.startsWith('[')) {
    const end = target.indexOf(']');
    host = end < 0 ? '' : target.slice(1, end);
  } else {
    const colon = target.lastIndexOf(':');
    host = colon < 0 ? target : target.slice(0, colon);
  }
  if (host === 'localhost' || host === '::1') return true;
  return /^127\.[0-9.]*$/.test(host);
}

function readPem(path, name) {
  if (path === undefined || path === '') return null;
  if (typeof path !== 'string') throw new TypeError(`${name}: expected a file path, got ${typeof path}`);
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new TypeError(`${name}: cannot read ${path}: ${err.code || err.message}`, { cause: err });
  }
}

// Adds `authorization: Bearer <token>` to every call (plain loopback channel).
function tokenInterceptor(token) {
  return (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('authorization', `Bearer ${token}`);
      next(metadata, listener);
    },
  });
}

// { credentials, interceptors } for a channel to `target` from the checked
// options object `o`; `where` prefixes error messages ("new Client: options").
function channelSecurity(o, target, where) {
  const uses = SECURITY_OPTIONS.filter((k) => o[k] !== undefined);
  if (o.credentials !== undefined && uses.length > 0) {
    throw new TypeError(`${where}.credentials: give either credentials or ${uses.join('/')}, not both`);
  }
  let token = o.token === undefined ? (process.env.TASKD_TOKEN || '') : o.token;
  if (typeof token !== 'string') throw new TypeError(`${where}.token: expected a string, got ${typeof token}`);
  token = token.trim();
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) {
    throw new TypeError(`${where}.tlsCert and tlsKey go together (a client certificate and its key)`);
  }
  const tls = Boolean(o.tls || o.tlsCa || o.tlsCert || o.tlsKey);
  if (o.credentials !== undefined) return { credentials: o.credentials, interceptors: [] };
  if (tls) {
    let credentials = grpc.credentials.createSsl(
      readPem(o.tlsCa, `${where}.tlsCa`), readPem(o.tlsKey, `${where}.tlsKey`), readPem(o.tlsCert, `${where}.tlsCert`));
    if (token) {
      credentials = grpc.credentials.combineChannelCredentials(credentials,
        grpc.credentials.createFromMetadataGenerator((_params, callback) => {
          const metadata = new grpc.Metadata();
          metadata.set('authorization', `Bearer ${token}`);
          callback(null, metadata);
        }));
    }
    return { credentials, interceptors: [] };
  }
  if (token && !isLoopbackTarget(target)) {
    throw new TypeError(`${where}.token: refusing to send a token to ${target} without TLS; give tlsCa (a token in clear text is readable by anyone on the path)`);
  }
  return {
    credentials: grpc.credentials.createInsecure(),
    interceptors: token ? [tokenInterceptor(token)] : [],
  };
}

module.exports = { SECURITY_OPTIONS, channelSecurity, isLoopbackTarget };
