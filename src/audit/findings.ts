/** One audit finding. `code` is stable (documented in README); `hint` says what to do. */
export interface Finding {
  severity: "error" | "warning" | "info";
  code: string;
  /** Path inside the audited tree the finding is about ("" for the whole target). */
  path: string;
  message: string;
  hint: string;
}

export const SEVERITY_RANK: Record<Finding["severity"], number> = { info: 0, warning: 1, error: 2 };
