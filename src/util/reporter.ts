/**
 * How core functions tell the caller about progress. The core never prints; the CLI supplies a
 * reporter that renders to a TTY or plain lines, and library users may pass their own.
 */
export interface Reporter {
  /** A step of long work has started (e.g. "grafting libraries"). */
  step(message: string): void;
  /** Progress of a measurable task (bytes downloaded, files processed). `total` may be unknown. */
  progress?(task: string, done: number, total?: number): void;
  /** Something the user should know that is not an error (e.g. which interpreter was chosen). */
  note(message: string): void;
  warn(message: string): void;
}
