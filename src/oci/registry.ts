/**
 * A client of the OCI distribution API for one repository: requests with the registry's
 * authentication (Basic, or a Bearer token fetched from the realm its 401 names, for
 * `repository:<repo>:pull,push`), TLS unless `insecure`. Credentials come from flags, else
 * `REGISTRY_AUTH_FILE`, else `~/.docker/config.json` (`$DOCKER_CONFIG`).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PyportError } from "../errors.js";

export interface Credentials {
  username: string;
  password: string;
}

export interface ImageReference {
  /** host[:port] */
  registry: string;
  repository: string;
  tag: string;
}

/** Parses `REGISTRY/REPO[:TAG]` (the tag defaults to `latest`). */
export function parseReference(ref: string): ImageReference {
  const slash = ref.indexOf("/");
  const registry = slash > 0 ? ref.slice(0, slash) : "";
  if (!registry || !(registry.includes(".") || registry.includes(":") || registry === "localhost"))
    throw new PyportError("E_USAGE", `${JSON.stringify(ref)} does not name a registry`, {
      hint: "Give REGISTRY/REPOSITORY:TAG, e.g. 127.0.0.1:5000/hello:1.0 or ghcr.io/me/hello:1.0.",
    });
  let rest = ref.slice(slash + 1);
  let tag = "latest";
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (
    !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(
      rest,
    )
  )
    throw new PyportError("E_USAGE", `${JSON.stringify(rest)} is not a valid repository name`, {
      hint: "Lower-case letters, digits and separators (. _ - /), e.g. team/hello.",
    });
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag))
    throw new PyportError("E_USAGE", `${JSON.stringify(tag)} is not a valid tag`, {
      hint: "Letters, digits, _ . and -, up to 128 characters.",
    });
  return { registry, repository: rest, tag };
}

/** The credentials stored for `registry` in the auth file, if any. */
export function storedCredentials(
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): Credentials | undefined {
  const files = [
    env.REGISTRY_AUTH_FILE,
    path.join(env.DOCKER_CONFIG ?? path.join(os.homedir(), ".docker"), "config.json"),
  ].filter((f): f is string => !!f);
  for (const file of files) {
    let auths: Record<string, { auth?: string; username?: string; password?: string }>;
    try {
      auths = (JSON.parse(fs.readFileSync(file, "utf8")) as { auths?: typeof auths }).auths ?? {};
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new PyportError("E_CONFIG", `${file} is not valid JSON: ${(err as Error).message}`, {
        hint: "Fix or remove the file (it holds registry credentials).",
      });
    }
    const entry = auths[registry] ?? auths[`https://${registry}`] ?? auths[`http://${registry}`];
    if (!entry) continue;
    if (entry.username && entry.password)
      return { username: entry.username, password: entry.password };
    if (entry.auth) {
      const text = Buffer.from(entry.auth, "base64").toString();
      const i = text.indexOf(":");
      if (i > 0) return { username: text.slice(0, i), password: text.slice(i + 1) };
    }
  }
  return undefined;
}

/** `key="value", …` of a WWW-Authenticate challenge. */
function challengeParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.matchAll(/(\w+)="([^"]*)"/g)) out[m[1]] = m[2];
  return out;
}

export class RegistryClient {
  private authorization?: string;
  readonly base: string;

  constructor(
    readonly ref: ImageReference,
    private readonly opts: { insecure?: boolean; credentials?: Credentials } = {},
  ) {
    this.base = `${opts.insecure ? "http" : "https"}://${ref.registry}`;
  }

  /** A URL of this repository's API (`path` below `/v2/<repo>/`), or an absolute Location. */
  url(p: string): string {
    if (/^https?:\/\//.test(p)) return p;
    if (p.startsWith("/")) return this.base + p;
    return `${this.base}/v2/${this.ref.repository}/${p}`;
  }

  /** A request, authenticating once when challenged; throws E_REGISTRY on unexpected statuses. */
  async request(
    method: string,
    p: string,
    init: {
      headers?: Record<string, string>;
      body?: Buffer;
      expect: number[];
      /** Run before the error is thrown when the registry answers with an unexpected status. */
      onRefused?: () => Promise<unknown>;
    },
  ): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...init.headers };
      if (this.authorization) headers.Authorization = this.authorization;
      let res: Response;
      try {
        res = await fetch(this.url(p), {
          method,
          headers,
          body: init.body && new Uint8Array(init.body),
          redirect: "follow",
        });
      } catch (err) {
        throw this.unreachable(err);
      }
      if (res.status === 401 && attempt === 0) {
        await res.arrayBuffer();
        await this.authenticate(res.headers.get("www-authenticate") ?? "");
        continue;
      }
      if (init.expect.includes(res.status)) return res;
      const text = (await res.text()).slice(0, 500);
      await init.onRefused?.();
      if (res.status === 401 && this.authorization)
        throw new PyportError(
          "E_REGISTRY",
          `${this.ref.registry} refused the credentials${this.opts.credentials ? ` of ${this.opts.credentials.username}` : ""} for ${this.ref.repository}`,
          {
            hint: "Check the user name and password (or token), and that the account may push to this repository.",
          },
        );
      throw new PyportError(
        "E_REGISTRY",
        `${method} ${this.url(p)}: ${res.status} ${res.statusText}${text ? `: ${text.trim()}` : ""}`,
        {
          hint:
            res.status === 401 || res.status === 403
              ? "Log in (docker login / skopeo login write ~/.docker/config.json or REGISTRY_AUTH_FILE) or pass --username with --password-stdin."
              : "See the registry's message above.",
        },
      );
    }
  }

  /** The error for a registry that could not be reached (network, TLS). */
  private unreachable(err: unknown): PyportError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? "";
    const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code);
    const plain = /EPROTO|ECONNRESET|wrong version number|packet length/i.test(
      `${code} ${cause?.message ?? ""}`,
    );
    return new PyportError(
      "E_REGISTRY",
      `cannot reach ${this.base}: ${tls ? `its TLS certificate is not trusted (${code})` : code || cause?.message || (err as Error).message}`,
      {
        hint: tls
          ? "Trust its CA: NODE_EXTRA_CA_CERTS=/path/to/ca.pem pyport push …; or, for a registry that serves plain HTTP, --insecure."
          : this.opts.insecure
            ? "Check the address and that the registry is running."
            : `Check the address and that the registry is running${plain ? "; it may serve plain HTTP, which needs --insecure" : "; a registry that serves plain HTTP needs --insecure"}.`,
      },
    );
  }

  private async authenticate(challenge: string): Promise<void> {
    const creds = this.opts.credentials;
    const basic =
      creds && `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    if (/^basic/i.test(challenge)) {
      if (!basic)
        throw new PyportError("E_REGISTRY", `${this.ref.registry} asks for a login`, {
          hint: "Pass --username and --password-stdin, or log in with docker/skopeo login.",
        });
      this.authorization = basic;
      return;
    }
    if (!/^bearer/i.test(challenge))
      throw new PyportError(
        "E_REGISTRY",
        `${this.ref.registry} asks for an unsupported authentication: ${challenge || "(none named)"}`,
        {
          hint: "pyport speaks Basic and Bearer-token authentication.",
        },
      );
    const { realm, service } = challengeParams(challenge);
    const url = new URL(realm);
    if (service) url.searchParams.set("service", service);
    url.searchParams.set("scope", `repository:${this.ref.repository}:pull,push`);
    const res = await fetch(url, { headers: basic ? { Authorization: basic } : {} });
    if (!res.ok)
      throw new PyportError(
        "E_REGISTRY",
        `the token service ${url.origin} refused: ${res.status} ${res.statusText}`,
        {
          hint: "Check the credentials (--username/--password-stdin or the auth file).",
        },
      );
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token)
      throw new PyportError("E_REGISTRY", `the token service ${url.origin} returned no token`, {
        hint: "The registry's token service is not compatible.",
      });
    this.authorization = `Bearer ${token}`;
  }
}
