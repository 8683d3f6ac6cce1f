// Node 20 worker for the network lab: http.Agent({keepAlive: true}),
// request 1, idle, request 2 on the same pooled socket.
//
// Usage: node node_client.js BASE_URL IDLE_SECONDS [PATH...]
//
// Sets no socket option itself. Note: Node's keep-alive Agent calls
// socket.setKeepAlive(true, agent.keepAliveMsecs) (1000 ms by default) on
// every socket it returns to the pool, so Node probes idle pooled sockets on
// its own; the lab shows what that does.
//
// JSON lines on stdout, as the other clients: response / idle / sending /
// error / result.
'use strict';
const http = require('http');

const T0 = process.hrtime.bigint();
const t = () => Number(process.hrtime.bigint() - T0) / 1e9;
const emit = (ev) => { ev.t = Number(t().toFixed(4)); process.stdout.write(JSON.stringify(ev) + '\n'); };

const base = process.argv[2];
const idle = parseFloat(process.argv[3] || '8');
const paths = process.argv.slice(4);
if (paths.length === 0) paths.push('/', '/');

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const port = res.socket.localPort;
      let size = 0;
      res.on('data', (c) => { size += c.length; });
      res.on('end', () => resolve({ status: res.statusCode, port, size }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

(async () => {
  const ports = [];
  let outcome = 'ok', excType = null, message = null;
  for (let n = 1; n <= paths.length; n++) {
    if (n > 1) {
      emit({ event: 'idle', n: n - 1, seconds: idle });
      await new Promise((r) => setTimeout(r, idle * 1000));
    }
    emit({ event: 'sending', n, path: paths[n - 1] });
    try {
      const r = await get(base + paths[n - 1]);
      ports.push(r.port);
      emit({ event: 'response', n, status: r.status, local_port: r.port, size: r.size });
    } catch (e) {
      outcome = 'error'; excType = e.code || e.name; message = String(e.message);
      emit({ event: 'error', n, exc_type: excType, message });
      break;
    }
  }
  emit({ event: 'result', outcome, local_ports: ports, elapsed: Number(t().toFixed(4)), exc_type: excType, message });
  agent.destroy();
  process.exit(outcome === 'ok' ? 0 : 1);
})();
