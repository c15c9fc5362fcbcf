/**
 * Downloads verified by sha256. The body is streamed to `<sha256>.partial` in the downloads
 * bucket while hashed; only a file whose hash matches is renamed into the cache, so a cached
 * download is always a verified one. Each request has a deadline for its answer and for every
 * chunk (a stalled server is given up on); failures of the network or the server (5xx) are
 * retried a bounded number of times with a growing pause, and each retry — or the next run, after
 * an interruption — resumes from what `.partial` already holds (an HTTP Range request; a server
 * that ignores it sends the whole file again).
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import type { Reporter } from "../util/reporter.js";
import { BUCKETS } from "./buckets.js";
import { materialize } from "./cache.js";
import { sha256File } from "../util/fs.js";

const SHA256_RE = /^[0-9a-f]{64}$/;

export function checkSha256(hex: string, what: string): string {
  const h = hex.trim().toLowerCase();
  if (!SHA256_RE.test(h))
    throw new PyportError(
      "E_USAGE",
      `${what} is not a sha256 (64 hex digits): ${JSON.stringify(hex)}`,
    );
  return h;
}

export interface DownloadOptions {
  /** Deadline for the answer and for each chunk of the body (default 30 s). */
  timeoutMs?: number;
  /** Attempts in all (default 4); pauses of 1, 2, 4 … s between them. */
  attempts?: number;
  /** Pause before the first retry (default 1000 ms), doubling each time. */
  retryPauseMs?: number;
  reporter?: Reporter;
}

/** Whether a failed attempt may succeed when repeated (the network, a stall, a 5xx answer). */
function retryable(err: unknown): boolean {
  return err instanceof PyportError && err.code === "E_DOWNLOAD" && !/HTTP 4\d\d/.test(err.message);
}

/**
 * One attempt: appends the rest of `url` to `partial` (from its current size). A deadline covers
 * the answer and each chunk; an answer other than 200/206 is an error.
 */
async function fetchInto(url: string, partial: string, opts: DownloadOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const have = await fsp.stat(partial).then(
    (st) => st.size,
    () => 0,
  );
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), timeoutMs);
  const stalled = () =>
    new PyportError("E_DOWNLOAD", `${url}: no data for ${Math.round(timeoutMs / 1000)} s`, {
      hint: "The server stalled; pyport retries and resumes. Check your network if it keeps happening.",
    });
  try {
    let res: Response;
    try {
      res = await fetch(url, {
        redirect: "follow",
        signal: abort.signal,
        headers: have ? { range: `bytes=${have}-` } : {},
      });
    } catch (err) {
      if (abort.signal.aborted) throw stalled();
      throw new PyportError(
        "E_DOWNLOAD",
        `cannot reach ${url}: ${(err as Error).cause ?? (err as Error).message}`,
        {
          hint: "Check the URL and your network, or download the file yourself and pass its path.",
          cause: err,
        },
      );
    }
    if (res.status === 416 && have) return; // nothing left to fetch: the hash decides
    if (res.status !== 200 && res.status !== 206)
      throw new PyportError(
        "E_DOWNLOAD",
        `GET ${url} answered HTTP ${res.status} ${res.statusText}`,
      );
    const resumed = res.status === 206;
    const total = Number(res.headers.get("content-length")) + (resumed ? have : 0) || undefined;
    const file = await fsp.open(partial, resumed ? "a" : "w", 0o644);
    let done = resumed ? have : 0;
    try {
      if (!res.body) throw new PyportError("E_DOWNLOAD", `GET ${url} returned no body`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(timer);
        timer = setTimeout(() => abort.abort(), timeoutMs);
        await file.write(chunk);
        done += chunk.length;
        opts.reporter?.progress?.(`download ${path.basename(partial)}`, done, total);
      }
    } catch (err) {
      if (err instanceof PyportError) throw err;
      if (abort.signal.aborted) throw stalled();
      throw new PyportError(
        "E_DOWNLOAD",
        `${url}: the download broke off: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    } finally {
      await file.close();
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Looks up the sha256 of `url` in a `SHA256SUMS` file in the same directory
 * (lines `<hex>  <name>` as written by sha256sum). Returns undefined when there is none.
 */
export async function sha256FromSums(url: string): Promise<string | undefined> {
  if (new URL(url).protocol !== "https:")
    throw new PyportError(
      "E_USAGE",
      `${url} is plain HTTP: a SHA256SUMS from the same server proves nothing there`,
      {
        hint: 'Pin the archive\'s checksum with --sha256 HEX (or sha256 = "…"), or use an https:// URL.',
      },
    );
  const sumsUrl = new URL("SHA256SUMS", url).toString();
  let res: Response;
  try {
    res = await fetch(sumsUrl, { signal: AbortSignal.timeout(30_000) });
  } catch {
    return undefined;
  }
  if (!res.ok) return undefined;
  const name = decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
  for (const line of (await res.text()).split("\n")) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$/.exec(line);
    if (m && m[2] === name) return m[1].toLowerCase();
  }
  return undefined;
}

/** Downloads `url` into the cache unless a verified copy is there; returns the cached file. */
export async function downloadVerified(
  url: string,
  sha256: string,
  opts: DownloadOptions = {},
): Promise<string> {
  const expected = checkSha256(sha256, "--sha256");
  const name = path.basename(new URL(url).pathname) || "download";
  const attempts = opts.attempts ?? 4;
  const { dir } = await materialize({
    bucket: BUCKETS.downloads,
    key: expected,
    build: async (tmp) => {
      // Beside the entry, outside the temp dir, so an interrupted download resumes next time.
      const partial = path.join(path.dirname(tmp), `${expected}.partial`);
      for (let attempt = 1; ; attempt++) {
        try {
          await fetchInto(url, partial, opts);
          break;
        } catch (err) {
          if (!retryable(err) || attempt >= attempts) throw err;
          const pause = (opts.retryPauseMs ?? 1000) * 2 ** (attempt - 1);
          opts.reporter?.warn(
            `${(err as Error).message}; retrying in ${Math.round(pause / 100) / 10} s (${attempt} of ${attempts - 1})`,
          );
          await new Promise((r) => setTimeout(r, pause));
        }
      }
      const actual = await sha256File(partial);
      if (actual !== expected) {
        await fsp.rm(partial, { force: true });
        throw new PyportError(
          "E_CHECKSUM",
          `sha256 mismatch for ${url}: expected ${expected}, got ${actual}`,
          {
            hint: "The file is not the one you expected (corrupt, truncated or replaced). Nothing was kept; check the URL and the checksum.",
          },
        );
      }
      await fsp.rename(partial, path.join(tmp, name));
    },
  });
  const files = (await fsp.readdir(dir)).filter((f) => !f.startsWith("."));
  return path.join(dir, files[0]);
}
