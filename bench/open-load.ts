/**
 * An open-loop load generator, run as its own process: `node open-load.js PORT PATH RATE SECONDS`
 * sends GET PATH to 127.0.0.1:PORT at RATE requests per second over 64 keep-alive connections,
 * each request when it is due whether or not earlier ones were answered (wrk keeps a fixed number
 * of requests in flight instead, so a slow server is sent less and its stalls hide). Prints a JSON
 * array of latencies in ms, each from the moment its request was due and the generator was ready
 * to send it: waiting for a free connection counts, the generator's own timer lateness does not.
 */
import * as net from "node:net";

const CONNECTIONS = 64;

interface Conn {
  socket: net.Socket;
  /** When the request in flight on it became due (undefined: idle). */
  since?: number;
  buffered: string;
}

async function main(): Promise<void> {
  const [port, path, rate, seconds] = process.argv.slice(2);
  const perSecond = Number(rate);
  const total = Math.round(perSecond * Number(seconds));
  const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  const latencies: number[] = [];
  const idle: Conn[] = [];
  const waiting: number[] = [];
  let failed = 0;

  const send = (c: Conn, since: number) => {
    c.since = since;
    c.socket.write(request);
  };
  const answered = (c: Conn) => {
    latencies.push(performance.now() - c.since!);
    const next = waiting.shift();
    if (next !== undefined) send(c, next);
    else idle.push(c);
  };
  // Responses carry a content-length (the servers under test answer that way); a response
  // without one counts as failed.
  const onData = (c: Conn, chunk: Buffer) => {
    c.buffered += chunk.toString("latin1");
    for (;;) {
      const end = c.buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(c.buffered.slice(0, end))?.[1];
      if (length === undefined) {
        failed++;
        c.buffered = "";
        return answered(c);
      }
      if (c.buffered.length < end + 4 + Number(length)) return;
      if (!c.buffered.startsWith("HTTP/1.1 2")) failed++;
      c.buffered = c.buffered.slice(end + 4 + Number(length));
      answered(c);
    }
  };
  for (let i = 0; i < CONNECTIONS; i++) {
    const socket = net.connect(Number(port), "127.0.0.1");
    socket.setNoDelay(true);
    const c: Conn = { socket, buffered: "" };
    socket.on("data", (d: Buffer) => onData(c, d));
    await new Promise<void>((resolve, reject) =>
      socket.once("connect", resolve).once("error", reject),
    );
    idle.push(c);
  }

  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      for (; sent < total && start + (sent * 1000) / perSecond <= now; sent++) {
        const c = idle.pop();
        if (c) send(c, now);
        else waiting.push(now);
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const deadline = performance.now() + 30_000; // requests never answered count as failed
  while (latencies.length < total && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 5));
  failed += total - latencies.length;
  const rounded = latencies.map((ms) => Math.round(ms * 1000) / 1000);
  // Exits once the output is written: stdout is a pipe, written asynchronously.
  process.stdout.write(JSON.stringify({ latencies: rounded, failed }), () => process.exit(0));
}

void main();
