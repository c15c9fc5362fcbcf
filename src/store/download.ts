/**
 * Downloads verified by sha256. The body is streamed to a temp file while hashed; only a file
 * whose hash matches is renamed into the cache, so a cached download is always a verified one.
 */
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { PyportError } from "../errors.js";
import type { Reporter } from "../util/reporter.js";
import { BUCKETS } from "./buckets.js";
import { materialize } from "./cache.js";

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

async function fetchOk(url: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: "follow" });
  } catch (err) {
    throw new PyportError(
      "E_DOWNLOAD",
      `cannot reach ${url}: ${(err as Error).cause ?? (err as Error).message}`,
      {
        hint: "Check the URL and your network, or download the file yourself and pass its path.",
        cause: err,
      },
    );
  }
  if (!res.ok)
    throw new PyportError("E_DOWNLOAD", `GET ${url} answered HTTP ${res.status} ${res.statusText}`);
  return res;
}

/**
 * Looks up the sha256 of `url` in a `SHA256SUMS` file in the same directory
 * (lines `<hex>  <name>` as written by sha256sum). Returns undefined when there is none.
 */
export async function sha256FromSums(url: string): Promise<string | undefined> {
  const sumsUrl = new URL("SHA256SUMS", url).toString();
  let res: Response;
  try {
    res = await fetch(sumsUrl);
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
  reporter?: Reporter,
): Promise<string> {
  const expected = checkSha256(sha256, "--sha256");
  const name = path.basename(new URL(url).pathname) || "download";
  const { dir } = await materialize({
    bucket: BUCKETS.downloads,
    key: expected,
    build: async (tmp) => {
      const res = await fetchOk(url);
      const total = Number(res.headers.get("content-length")) || undefined;
      const hash = createHash("sha256");
      const file = await fsp.open(path.join(tmp, name), "wx", 0o644);
      let done = 0;
      try {
        if (!res.body) throw new PyportError("E_DOWNLOAD", `GET ${url} returned no body`);
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          hash.update(chunk);
          await file.write(chunk);
          done += chunk.length;
          reporter?.progress?.(`download ${name}`, done, total);
        }
      } finally {
        await file.close();
      }
      const actual = hash.digest("hex");
      if (actual !== expected) {
        throw new PyportError(
          "E_CHECKSUM",
          `sha256 mismatch for ${url}: expected ${expected}, got ${actual}`,
          {
            hint: "The file is not the one you expected (corrupt, truncated or replaced). Nothing was kept; check the URL and the checksum.",
          },
        );
      }
    },
  });
  const files = (await fsp.readdir(dir)).filter((f) => !f.startsWith("."));
  return path.join(dir, files[0]);
}
