/**
 * Services: the spec's validation (file:line:key errors), the supervisor's restart policies,
 * back-off, health transitions, stop signal and timeout and exit statuses (with real child
 * processes), and `pyport run` of the webapp example end to end.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { before, describe, test } from "node:test";
import { loadConfig } from "../src/bundle/config.js";
import { PyportError } from "../src/errors.js";
import { Supervisor, type RunnableService } from "../src/service/supervisor.js";
import { CLI, REPO, sharedPython, skipPart, tmpDir, useTestCache } from "./helpers.js";
import { freePort } from "./oci-tools.js";

useTestCache();

function project(tool: string): string {
  const dir = tmpDir("svc-config");
  fs.writeFileSync(
    path.join(dir, "pyproject.toml"),
    `[project]\nname = "svc"\nversion = "1.0"\n\n[project.scripts]\nsvc = "svc:main"\nsvc-admin = "svc:admin"\n\n${tool}`,
  );
  return dir;
}

function configError(tool: string): string {
  try {
    loadConfig(project(tool));
  } catch (err) {
    assert.ok(err instanceof PyportError, String(err));
    return `${err.message}\n${err.hint ?? ""}`;
  }
  assert.fail("the configuration was accepted");
}

describe("the service spec", () => {
  test("a full spec is read, with durations in seconds or with units", () => {
    const cfg = loadConfig(
      project(`[tool.pyport.service]
entry = "svc"
args = ["--port", "8080"]
env = { LOG = "debug" }
ports = [8080, "5353/udp"]
health = { http = "/health", interval = "500ms", timeout = 2, retries = 2 }
stop-signal = "INT"
stop-timeout = "1m"
restart = "always"
workdir = "data"
`),
    );
    assert.deepEqual(cfg.services, [
      {
        name: "svc",
        entry: "svc",
        command: undefined,
        args: ["--port", "8080"],
        env: { LOG: "debug" },
        ports: [
          { port: 8080, protocol: "tcp" },
          { port: 5353, protocol: "udp" },
        ],
        health: {
          http: "/health",
          command: undefined,
          intervalMs: 500,
          timeoutMs: 2000,
          retries: 2,
        },
        stopSignal: "SIGINT",
        stopTimeoutMs: 60_000,
        restart: "always",
        workdir: "data",
      },
    ]);
  });

  test("several services, each named by its table", () => {
    const cfg = loadConfig(
      project(`[tool.pyport.services.web]
entry = "svc"

[tool.pyport.services.worker]
command = "bin/python3 -m svc.worker"
restart = "no"
`),
    );
    assert.deepEqual(
      cfg.services.map((s) => [s.name, s.entry ?? s.command?.join(" "), s.restart]),
      [
        ["web", "svc", "on-failure"],
        ["worker", "bin/python3 -m svc.worker", "no"],
      ],
    );
  });

  test("errors name the file, the line and the key, and say what to do", () => {
    const cases: [string, RegExp][] = [
      [
        '[tool.pyport.service]\nentry = "svc"\nports = [70000]\n',
        /pyproject\.toml:11: tool\.pyport\.service\.ports: 70000 is not a port/,
      ],
      [
        '[tool.pyport.service]\nentry = "svc"\nrestrat = "no"\n',
        /:11: tool\.pyport\.service\.restrat: unknown key\nDid you mean "restart"\?/,
      ],
      [
        '[tool.pyport.service]\nentry = "svc"\nrestart = "sometimes"\n',
        /:11: .*restart: "sometimes" is not valid/,
      ],
      [
        '[tool.pyport.service]\nentry = "scv"\n',
        /:10: tool\.pyport\.service\.entry: "scv" is not a console script.*\nDid you mean "svc"\?/,
      ],
      [
        '[tool.pyport.service]\nentry = "svc"\nhealth = { http = "/health" }\n',
        /:11: .*health: an HTTP health check needs a TCP port/,
      ],
      [
        '[tool.pyport.service]\nentry = "svc"\nports = [80]\nhealth = { http = "/h", interval = "soon" }\n',
        /:12: .*health\.interval: "soon" is not a duration/,
      ],
      [
        '[tool.pyport.service]\nentry = "svc"\ncommand = ["x"]\n',
        /:11: .*command: entry and command are both set/,
      ],
      [
        '[tool.pyport.services."web app"]\nentry = "svc"\n',
        /:9: tool\.pyport\.services\.web app: "web app" is not a service name/,
      ],
      [
        '[tool.pyport.service]\nstop-signal = "TERMINATE"\n',
        /:10: .*stop-signal: .* is not a signal pyport forwards/,
      ],
    ];
    for (const [tool, expected] of cases) assert.match(configError(tool), expected, tool);
  });
});

/** A service that runs `code` with node (the supervisor is indifferent to what it runs). */
function nodeService(
  name: string,
  code: string,
  over: Partial<RunnableService> = {},
): RunnableService {
  return {
    name,
    command: [process.execPath, "-e", code],
    args: [],
    env: {},
    ports: [],
    stopSignal: "SIGTERM",
    stopTimeoutMs: 5000,
    restart: "on-failure",
    ...over,
  };
}

async function supervise(
  services: RunnableService[],
  opts: { raw?: boolean; stopAfter?: (log: () => string) => Promise<void> } = {},
) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = "";
  let stderr = "";
  out.on("data", (d: Buffer) => (stdout += d.toString()));
  err.on("data", (d: Buffer) => (stderr += d.toString()));
  const s = new Supervisor({
    bundle: tmpDir("svc-bundle"),
    services,
    raw: opts.raw,
    stdout: out,
    stderr: err,
    backoff: { firstMs: 50, maxMs: 400, resetAfterMs: 10_000 },
  });
  const status = s.run();
  if (opts.stopAfter) {
    await opts.stopAfter(() => stderr + stdout);
    s.stop();
  }
  return { status: await status, stdout, stderr, laterStderr: () => stderr };
}

async function until(log: () => string, pattern: RegExp, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pattern.test(log())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${pattern}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("the supervisor", { timeout: 120_000 }, () => {
  test("on-failure restarts with a growing back-off until the service succeeds; output is prefixed", async () => {
    const counter = path.join(tmpDir("svc-count"), "n");
    const code = `const fs=require("fs");const f=${JSON.stringify(counter)};const n=fs.existsSync(f)?+fs.readFileSync(f,"utf8"):0;fs.writeFileSync(f,String(n+1));console.log("run "+n);process.exit(n<3?3:0)`;
    const r = await supervise([nodeService("api", code)]);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^\d\d:\d\d:\d\d\.\d{3} api \| run 0$/m);
    assert.match(r.stdout, /api \| run 3$/m);
    const delays = [
      ...r.stderr.matchAll(/restarting in ([\d.]+) s \(restart = on-failure, attempt (\d)\)/g),
    ].map((m) => Number(m[1]));
    assert.deepEqual(delays, [0.1, 0.1, 0.2], r.stderr); // 50 ms doubling, shown to 0.1 s
    assert.match(r.stderr, /api \* exited with 0\n$/);
  });

  test("restart = no: the service's status is the result; a signal death is 128 + N", async () => {
    assert.equal(
      (await supervise([nodeService("one", "process.exit(3)", { restart: "no" })])).status,
      3,
    );
    const killed = await supervise([
      nodeService("two", "process.kill(process.pid, 'SIGKILL')", { restart: "no" }),
    ]);
    assert.equal(killed.status, 137);
    assert.match(killed.stderr, /was killed by SIGKILL/);
  });

  test("stop sends the stop signal, then SIGKILL after the stop timeout", async () => {
    const graceful = await supervise(
      [
        nodeService(
          "g",
          `process.on("SIGUSR2",()=>{console.log("bye");process.exit(0)});console.log("up");setInterval(()=>{},1000)`,
          { stopSignal: "SIGUSR2" },
        ),
      ],
      { stopAfter: (log) => until(log, /g \| up/) },
    );
    assert.equal(graceful.status, 0);
    assert.match(graceful.stdout, /g \| bye/);
    assert.match(graceful.stderr, /stopping \(SIGUSR2, SIGKILL after 5 s\)/);
    const stubborn = await supervise(
      [
        nodeService(
          "s",
          `process.on("SIGTERM",()=>console.log("ignored"));console.log("up");setInterval(()=>{},1000)`,
          { stopTimeoutMs: 300, restart: "always" },
        ),
      ],
      { stopAfter: (log) => until(log, /s \| up/) },
    );
    assert.equal(stubborn.status, 137);
    assert.match(stubborn.stderr, /did not stop within 0\.3 s; killing it/);
    assert.doesNotMatch(stubborn.stderr, /restarting/, "a stopped service is not restarted");
  });

  test("health transitions are reported: healthy, unhealthy, healthy again", async () => {
    const port = await freePort();
    // Answers 200, then 500 for requests 3–5, then 200 again.
    const code = `let n=0;require("http").createServer((q,s)=>{n++;s.writeHead(n>=3&&n<=5?500:200);s.end()}).listen(${port},"127.0.0.1",()=>console.log("listening"))`;
    const r = await supervise(
      [
        nodeService("web", code, {
          ports: [{ port, protocol: "tcp" }],
          health: { http: "/health", intervalMs: 100, timeoutMs: 1000, retries: 2 },
        }),
      ],
      { stopAfter: (log) => until(log, /healthy again/) },
    );
    assert.match(
      r.stderr,
      /web \* healthy\n[^]*web \* unhealthy: GET \/health answered 500 \(2 failed check\(s\) in a row\)\n[^]*web \* healthy again/,
    );
    assert.equal(r.status, 143, "node dies of the SIGTERM it does not handle");
  });

  test("health checks end with the service: none after it died of a signal", async () => {
    // The check (300 ms) is still running when the service kills itself (at 150 ms).
    const r = await supervise([
      nodeService(
        "dies",
        `setTimeout(()=>process.kill(process.pid,"SIGKILL"),150);setInterval(()=>{},1000)`,
        {
          restart: "no",
          health: {
            command: [process.execPath, "-e", "setTimeout(()=>{},300)"],
            intervalMs: 50,
            timeoutMs: 5000,
            retries: 1,
          },
        },
      ),
    ]);
    assert.equal(r.status, 137);
    await new Promise((res) => setTimeout(res, 800));
    const after = r.laterStderr().split("was killed by SIGKILL")[1];
    assert.equal(after, "\n", `nothing after the service ended:${after}`);
  });

  test("several services run together, each on its own; the first failure is the status", async () => {
    const r = await supervise([
      nodeService("ok", "console.log('done')", { restart: "no" }),
      nodeService("bad", "process.exit(5)", { restart: "no" }),
    ]);
    assert.equal(r.status, 5);
    assert.match(r.stdout, /ok  \| done/, "names are padded to one width");
  });

  test("raw passes output through untouched", async () => {
    const r = await supervise([nodeService("raw", "console.log('plain')", { restart: "no" })], {
      raw: true,
    });
    assert.equal(r.stdout, "plain\n");
    assert.match(r.stderr, /^pyport: raw: started/m);
  });

  test("a program that does not exist is reported once, not restarted", async () => {
    const r = await supervise([
      { ...nodeService("ghost", ""), command: ["bin/no-such-program"], restart: "always" },
    ]);
    assert.equal(r.status, 127);
    assert.match(r.stderr, /cannot start bin\/no-such-program: spawn .* ENOENT/);
  });
});

describe("pyport run", { timeout: 600_000 }, () => {
  let python: string | undefined;
  before(async () => {
    python = (await sharedPython())?.path;
  });

  test("runs the webapp project: builds it, reports it healthy, forwards SIGTERM, exits with its status", async (t) => {
    if (!python) return skipPart(t, "no CPython with a shared libpython found");
    const dir = path.join(tmpDir("svc-web"), "webapp");
    fs.cpSync(path.join(REPO, "examples/webapp"), dir, {
      recursive: true,
      filter: (s) => path.basename(s) !== "dist",
    });
    const port = await freePort();
    const toml = path.join(dir, "pyproject.toml");
    fs.writeFileSync(
      toml,
      fs
        .readFileSync(toml, "utf8")
        .replace(/args = \[.*\]/, `args = ["--host", "127.0.0.1", "--port", "${port}"]`)
        .replace("ports = [8080]", `ports = [${port}]`)
        .replace('interval = "5s"', 'interval = "200ms"')
        .replace(
          "[tool.pyport.service]",
          `[tool.pyport]\npython = ${JSON.stringify(python)}\n\n[tool.pyport.service]`,
        ),
    );
    const child = spawn(
      process.execPath,
      [CLI, "run", dir, "--quiet", "--", "--port", String(port)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let log = "";
    child.stdout.on("data", (d: Buffer) => (log += d.toString()));
    child.stderr.on("data", (d: Buffer) => (log += d.toString()));
    const closed = new Promise<number | null>((r) => child.on("close", r));
    await until(() => log, /webapp \* healthy/, 300_000);
    const body = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as {
      prefix: string;
    };
    assert.equal(body.prefix, path.join(dir, "dist/webapp"));
    assert.match(log, /webapp \| webapp: listening on http:\/\/127\.0\.0\.1:\d+/);
    child.kill("SIGTERM");
    assert.equal(await closed, 143, log);
    assert.match(log, /stopping \(SIGTERM, SIGKILL after 5 s\)[^]*was killed by SIGTERM/);
  });
});
