/**
 * What the engine keeps besides triggers: the plugins' shared cache (pickled values from Python,
 * per trigger or global, with a TTL) and the log (a bounded ring of entries, newest last).
 */

export interface LogEntry {
  /** Increases by one per entry the engine logs (for following the log: `after`). */
  seq: number;
  time: Date;
  trigger: string;
  level: "info" | "warn" | "error";
  message: string;
}

export interface LogQuery {
  trigger?: string;
  level?: LogEntry["level"];
  since?: Date;
  /** Only entries with a greater `seq`. */
  after?: number;
  limit?: number;
}

const LEVELS = { info: 0, warn: 1, error: 2 } as const;

export class EngineLog {
  private entries: LogEntry[] = [];
  /** Entries dropped because the ring was full (the oldest go first). */
  dropped = 0;
  private seq = 0;

  constructor(
    private readonly capacity: number,
    private readonly onEntry?: (e: LogEntry) => void,
  ) {}

  add(trigger: string, level: LogEntry["level"], message: string): void {
    const e = { seq: ++this.seq, time: new Date(), trigger, level, message };
    this.entries.push(e);
    if (this.entries.length > this.capacity) {
      this.entries.splice(0, this.entries.length - this.capacity);
      this.dropped++;
    }
    this.onEntry?.(e);
  }

  /** Entries matching `q` (a level means that level or worse), oldest first, the last `limit`. */
  query(q: LogQuery = {}): LogEntry[] {
    const out = this.entries.filter(
      (e) =>
        (q.trigger === undefined || e.trigger === q.trigger) &&
        (q.level === undefined || LEVELS[e.level] >= LEVELS[q.level]) &&
        (q.since === undefined || e.time >= q.since) &&
        (q.after === undefined || e.seq > q.after),
    );
    return q.limit === undefined ? out : out.slice(-q.limit);
  }
}

export class PluginCache {
  private readonly values = new Map<string, { data: Uint8Array; expires: number }>();

  private static key(scope: string, key: string): string {
    return `${scope}\0${key}`;
  }

  put(scope: string, key: string, data: Uint8Array, ttlSeconds: number | null): void {
    const expires = ttlSeconds == null ? Infinity : Date.now() + ttlSeconds * 1000;
    // A copy: a decoded value may be a view into a larger buffer it would keep alive.
    this.values.set(PluginCache.key(scope, key), { data: new Uint8Array(data), expires });
  }

  get(scope: string, key: string): Uint8Array | null {
    const k = PluginCache.key(scope, key);
    const v = this.values.get(k);
    if (!v) return null;
    if (v.expires <= Date.now()) {
      this.values.delete(k);
      return null;
    }
    return v.data;
  }

  delete(scope: string, key: string): boolean {
    return this.values.delete(PluginCache.key(scope, key));
  }

  /** Drops a trigger's own values (when it is deleted). */
  clearScope(scope: string): void {
    for (const k of this.values.keys()) if (k.startsWith(`${scope}\0`)) this.values.delete(k);
  }
}
