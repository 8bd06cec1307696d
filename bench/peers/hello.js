// hello.js - the Node.js peer of the hello benchmark: the same two answers
// as raw_mhd.c and volga_hello.c, with Node's plain http module in one
// process. GET /hello -> "Hello, World!" (text/plain), GET /json ->
// {"message":"Hello, World!","answer":42}, stringified per request as
// volga_hello does.
//
// Usage: node hello.js PORT   (binds 127.0.0.1 only; stops on SIGINT/SIGTERM).
'use strict';

const http = require('http');

const port = Number(process.argv[2]);
if (process.argv.length !== 3 || !Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('usage: node hello.js PORT');
  process.exit(2);
}

const helloBody = Buffer.from('Hello, World!');

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/hello') {
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': helloBody.length,
    });
    res.end(helloBody);
  } else if (req.method === 'GET' && req.url === '/json') {
    const body = JSON.stringify({ message: 'Hello, World!', answer: 42 });
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  }
});

server.on('error', (err) => {
  console.error(`node_hello: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`node_hello: listening on 127.0.0.1:${port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
