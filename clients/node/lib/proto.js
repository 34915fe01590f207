'use strict';
// Loads taskd.v1 from the .proto shipped inside this package (proto/), so the
// package needs no generated code and no file outside itself at run time.
// The copy must equal api/taskd/v1/taskd.proto (test/proto_sync.test.js).

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_PATH = path.join(__dirname, '..', 'proto', 'taskd', 'v1', 'taskd.proto');

const packageDefinition = protoLoader.loadSync(PROTO_PATH, {
  keepCase: false, // idempotency_key -> idempotencyKey
  longs: String, // uint64 lease ids and sequences arrive as decimal strings
  enums: String, // 'TASK_STATE_SUCCEEDED'
  bytes: Buffer,
  defaults: true,
  oneofs: true, // WorkResponse.msg names the field that is set
  includeDirs: [path.join(__dirname, '..', 'proto')],
});

const v1 = grpc.loadPackageDefinition(packageDefinition).taskd.v1;

module.exports = { PROTO_PATH, v1 };
