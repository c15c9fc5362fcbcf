/** `pyport push IMAGE REGISTRY/REPO:TAG`: an OCI layout or archive → a registry. */
import { PyportError } from "../errors.js";
import { parse } from "./args.js";
import { mib } from "./output.js";

const PUSH_USAGE = `Usage: pyport push IMAGE REGISTRY/REPOSITORY[:TAG] [--insecure] [--json]
                   [--username U --password-stdin] [--chunk-size MIB]

Pushes an image that pyport build --format oci (or oci-archive) wrote — IMAGE is the .oci
directory or the .oci.tar, optionally IMAGE:REF for a tag inside the layout — to a registry over
the OCI distribution API. Blobs the registry already has are not sent again; others go in
chunks, and a push that failed or was interrupted uploads only what is still missing when you
run it again (a half-sent layer resumes where the registry stopped). The image's SBOM is pushed
as a referrer (the registry's referrers API, or the sha256-<digest> tag where it has none).

Credentials: --username with the password on stdin (--password-stdin), else the registry's
entry in $REGISTRY_AUTH_FILE or ~/.docker/config.json (docker login, skopeo login). Basic and
bearer-token authentication.

Options:
  --insecure        plain HTTP instead of TLS (a registry on localhost for tests); says so
  --username U      the user name (with --password-stdin)
  --password-stdin  read the password from stdin
  --chunk-size MIB  upload chunk size in MiB (default 16)
  --json            one JSON event per line (blob, progress, manifest, referrer), then the
                    result {"digest", "reference", "uploaded", "existing", "bytesUploaded",
                    "referrers"}
Example: pyport push dist/hello-1.0.0-linux-x86_64.oci 127.0.0.1:5000/hello:1.0.0 --insecure`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString()
    .replace(/\r?\n$/, "");
}

export async function pushCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      insecure: { type: "boolean" },
      username: { type: "string" },
      "password-stdin": { type: "boolean" },
      "chunk-size": { type: "string" },
      json: { type: "boolean" },
    },
    PUSH_USAGE,
  );
  if (values.help) {
    process.stdout.write(PUSH_USAGE + "\n");
    return 0;
  }
  if (positionals.length !== 2)
    throw new PyportError("E_USAGE", "pyport push takes an image and a target", {
      hint: "Example: pyport push dist/hello-1.0.0-linux-x86_64.oci 127.0.0.1:5000/hello:1.0.0",
    });
  if (!!values.username !== !!values["password-stdin"])
    throw new PyportError("E_USAGE", "--username and --password-stdin go together", {
      hint: 'echo "$TOKEN" | pyport push IMAGE TARGET --username me --password-stdin',
    });
  const chunkMib = Number(values["chunk-size"] ?? 16);
  if (!(chunkMib > 0 && chunkMib <= 1024))
    throw new PyportError("E_USAGE", `--chunk-size ${values["chunk-size"]} is not a size in MiB`, {
      hint: "Give a number of MiB from 1 to 1024 (fractions allowed), e.g. --chunk-size 8.",
    });
  const { push } = await import("../oci/push.js");
  const { storedCredentials, parseReference } = await import("../oci/registry.js");
  const registry = parseReference(positionals[1]).registry;
  const credentials = values.username
    ? { username: values.username, password: await readStdin() }
    : storedCredentials(registry);
  if (values.insecure)
    process.stderr.write(
      `pyport: --insecure: talking plain HTTP to ${registry}; ${credentials ? "the image and your credentials travel" : "the image travels"} unencrypted\n`,
    );
  const tty = process.stderr.isTTY && !values.json;
  const result = await push({
    image: positionals[0],
    target: positionals[1],
    insecure: values.insecure,
    credentials,
    chunkSize: Math.round(chunkMib * 2 ** 20),
    onEvent: (e) => {
      if (values.json) process.stdout.write(JSON.stringify(e) + "\n");
      else if (e.event === "progress" && tty)
        process.stderr.write(`\r  ${e.digest.slice(7, 19)} ${mib(e.sent)} / ${mib(e.size)}   `);
      else if (e.event === "blob" && e.status !== "uploading")
        process.stderr.write(
          `${tty ? "\r" : ""}  ${e.digest.slice(7, 19)} ${mib(e.size).padStart(9)}  ${e.status === "resumed" ? `resumed at ${mib(e.offset ?? 0)}` : e.status}\n`,
        );
      else if (e.event === "referrer")
        process.stderr.write(
          `  referrer ${e.digest.slice(7, 19)} (${e.artifactType}) via ${e.via}\n`,
        );
    },
  });
  if (values.json) process.stdout.write(JSON.stringify({ event: "done", ...result }) + "\n");
  else
    process.stdout.write(
      `pushed ${result.reference}@${result.digest} (${result.uploaded.length} blob(s) uploaded, ${mib(result.bytesUploaded)}; ${result.existing.length} already there)\n`,
    );
  return 0;
}
