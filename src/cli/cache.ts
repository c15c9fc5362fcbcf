import { PyportError } from "../errors.js";
import { cacheRoot } from "../store/buckets.js";
import { listCache, pruneCache } from "../store/cache.js";
import { parse } from "./args.js";
import { mib, table } from "./output.js";

const CACHE_USAGE = `pyport cache dir|list|prune [options]

  dir                     print the cache directory ($PYPORT_CACHE, else $XDG_CACHE_HOME/pyport,
                          else ~/.cache/pyport)
  list [--json]           list cache entries with size, state and last use
  prune --older-than DAYS [--bucket NAME] [--dry-run] [--json]
                          remove entries not used for DAYS days (0: every entry not in use),
                          and leftovers of processes that died, whatever their age. Entries
                          in use (being built, or the extraction of a running onefile) stay.

Buckets carry a format version (runtimes-v1, archives-v1, downloads-v1, probes-v1, wheels-v1);
removing any entry is always safe: pyport rebuilds or re-downloads it when needed.
onefile-v1 holds what single-file executables unpacked on their first run (each run marks its
extraction used at most once a day); a pruned one is unpacked again by its next run.
Example: pyport cache prune --bucket onefile-v1 --older-than 30`;

export async function cacheCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      json: { type: "boolean" },
      "older-than": { type: "string" },
      bucket: { type: "string" },
      "dry-run": { type: "boolean" },
    },
    CACHE_USAGE,
  );
  const [sub] = positionals;
  if (values.help || !sub) {
    process.stdout.write(CACHE_USAGE + "\n");
    return values.help ? 0 : 2;
  }
  if (sub === "dir") {
    process.stdout.write(cacheRoot() + "\n");
    return 0;
  }
  if (sub === "list") {
    const entries = await listCache();
    if (values.json) process.stdout.write(JSON.stringify(entries, null, 2) + "\n");
    else if (entries.length === 0) process.stdout.write(`cache ${cacheRoot()} is empty\n`);
    else
      process.stdout.write(
        table([
          ["BUCKET", "KEY", "SIZE", "STATE", "LAST USED"],
          ...entries.map((e) => [
            e.bucket,
            e.key,
            mib(e.bytes),
            e.complete ? "complete" : "incomplete",
            e.lastUsed.toISOString(),
          ]),
        ]),
      );
    return 0;
  }
  if (sub === "prune") {
    if (values["older-than"] === undefined)
      throw new PyportError("E_USAGE", "pyport cache prune needs --older-than DAYS", {
        hint: "Example: pyport cache prune --older-than 30 (or --older-than 0 to remove every entry not in use; add --dry-run to see what would go).",
      });
    const days = Number(String(values["older-than"]).replace(/d$/, ""));
    if (!Number.isFinite(days) || days < 0)
      throw new PyportError(
        "E_USAGE",
        `--older-than ${values["older-than"]} is not a number of days`,
        {
          hint: "Example: --older-than 30",
        },
      );
    const { removed, inUse } = await pruneCache({
      olderThanDays: days,
      bucket: values.bucket as string | undefined,
      dryRun: values["dry-run"] === true,
    });
    if (values.json) process.stdout.write(JSON.stringify({ removed, inUse }, null, 2) + "\n");
    else {
      const total = removed.reduce((n, e) => n + e.bytes, 0);
      process.stdout.write(
        `${values["dry-run"] ? "would remove" : "removed"} ${removed.length} entries (${mib(total)})\n`,
      );
      for (const e of removed) process.stdout.write(`  ${e.bucket}/${e.key}\n`);
      if (inUse.length) process.stdout.write(`kept ${inUse.length} entries in use:\n`);
      for (const e of inUse) process.stdout.write(`  ${e.bucket}/${e.key}\n`);
    }
    return 0;
  }
  throw new PyportError("E_USAGE", `unknown cache command ${JSON.stringify(sub)}`, {
    hint: "Use: pyport cache dir|list|prune",
  });
}
