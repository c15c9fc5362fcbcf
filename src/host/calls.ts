/**
 * The calls in flight on one worker, by id. A worker numbers its calls itself, one after the
 * other, so the recent ones sit in a ring indexed by the low bits of their id: setting, finding
 * and removing one costs a few array accesses, where a Map costs ~0.2–0.5 µs a call in a burst
 * (growing and shrinking its table). A call still in flight when its slot comes round again —
 * a slow one, overtaken by more calls than the ring holds — moves to a Map of stragglers; the
 * ring doubles first while it is smaller than MAX_RING.
 */
const FIRST_RING = 1024;
const MAX_RING = 1 << 16;

export class CallTable<T> {
  /** How many calls are in flight. */
  size = 0;
  private ids = new Float64Array(FIRST_RING);
  private entries: (T | undefined)[] = new Array<T | undefined>(FIRST_RING).fill(undefined);
  private mask = FIRST_RING - 1;
  private readonly stragglers = new Map<number, T>();

  set(id: number, entry: T): void {
    let slot = id & this.mask;
    if (this.entries[slot] !== undefined) {
      if (this.entries.length < MAX_RING) {
        this.grow();
        slot = id & this.mask;
      }
      const old = this.entries[slot];
      if (old !== undefined) this.stragglers.set(this.ids[slot], old);
    }
    this.ids[slot] = id;
    this.entries[slot] = entry;
    this.size++;
  }

  get(id: number): T | undefined {
    const slot = id & this.mask;
    if (this.ids[slot] === id && this.entries[slot] !== undefined) return this.entries[slot];
    return this.stragglers.size ? this.stragglers.get(id) : undefined;
  }

  /** Removes the call with this id; false when it was not in flight. */
  delete(id: number): boolean {
    const slot = id & this.mask;
    if (this.ids[slot] === id && this.entries[slot] !== undefined) {
      this.entries[slot] = undefined;
      this.size--;
      return true;
    }
    if (!this.stragglers.delete(id)) return false;
    this.size--;
    return true;
  }

  /** Every call in flight, in the order they were made (by id), which are then forgotten. */
  takeAll(): T[] {
    const all: [number, T][] = [...this.stragglers];
    this.entries.forEach((e, slot) => e !== undefined && all.push([this.ids[slot], e]));
    all.sort((a, b) => a[0] - b[0]);
    this.entries.fill(undefined);
    this.stragglers.clear();
    this.size = 0;
    return all.map(([, e]) => e);
  }

  private grow(): void {
    const [ids, entries] = [this.ids, this.entries];
    this.ids = new Float64Array(ids.length * 2);
    this.entries = new Array<T | undefined>(ids.length * 2).fill(undefined);
    this.mask = ids.length * 2 - 1;
    for (let i = 0; i < ids.length; i++) {
      if (entries[i] === undefined) continue;
      const slot = ids[i] & this.mask;
      this.ids[slot] = ids[i];
      this.entries[slot] = entries[i];
    }
  }
}
