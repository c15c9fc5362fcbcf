/** The human form of an audit report: floors and where they run, findings by severity with what to do, components. */
import type { AuditReport } from "./audit.js";

export function formatAudit(r: AuditReport, opts: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  lines.push(
    `audit of ${r.target} (${r.onefile ? `onefile running ${r.onefile.entry}, payload sha256 ${r.onefile.sha256.slice(0, 16)}… verified; ` : ""}${r.kind}, libc ${r.libc.mode}${r.libc.kernelFloor ? `, kernel >= ${r.libc.kernelFloor}` : ""}) against policy ${r.policy}`,
  );
  const floors = Object.entries(r.floorDetails);
  if (floors.length === 0) lines.push("floors: none (nothing versioned is needed from outside)");
  for (const [ns, f] of floors) {
    const first = f!.setBy[0];
    const more =
      f!.setBy.length > 1
        ? ` and ${f!.setBy.length - 1} more file${f!.setBy.length > 2 ? "s" : ""}`
        : "";
    const syms = first.symbols.length
      ? `: ${first.symbols
          .slice(0, 3)
          .map((s) => `${s}@${ns}_${f!.version}`)
          .join(", ")}${first.symbols.length > 3 ? ", …" : ""}`
      : "";
    lines.push(`floor ${ns} ${f!.version}, set by ${first.path}${syms}${more}`);
  }
  lines.push(
    `runs on: ${
      r.runsOn
        .filter((x) => x.from)
        .map((x) => x.label)
        .join(", ") || "none of the listed distributions"
    }`,
  );
  const not = r.runsOn
    .filter((x) => x.notOn)
    .map((x) => `${x.family} ${x.notOn!.version} (${x.notOn!.reason})`);
  if (not.length) lines.push(`not on:  ${not.join(", ")}`);

  for (const sev of ["error", "warning", "info"] as const) {
    const list = r.findings.filter((f) => f.severity === sev);
    if (list.length === 0) continue;
    const limit = opts.verbose ? list.length : 25;
    lines.push("", `${sev.toUpperCase()}S (${list.length})`);
    for (const f of list.slice(0, limit)) {
      lines.push(`  ${f.code} ${f.path || "."}: ${f.message}`);
      lines.push(`      what to do: ${f.hint}`);
    }
    if (list.length > limit)
      lines.push(`  … ${list.length - limit} more (--verbose or --json lists all)`);
  }

  const cl = (k: "strong" | "weak") => r.components.filter((c) => c.copyleft === k).length;
  lines.push(
    "",
    `components (${r.components.length}; copyleft: ${cl("strong")} strong, ${cl("weak")} weak; unknown licences: ${r.components.filter((c) => !c.licenseKnown).length})`,
  );
  const rows = r.components.map((c) => [
    c.name,
    c.version ?? "",
    c.license,
    c.copyleft ? `copyleft (${c.copyleft})` : "",
  ]);
  const widths = [0, 1, 2].map((i) =>
    Math.min(40, Math.max(...rows.map((row) => row[i].length), 4)),
  );
  for (const row of rows)
    lines.push(
      `  ${row
        .map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell))
        .join("  ")
        .trimEnd()}`,
    );
  const counts = { error: 0, warning: 0, info: 0 };
  for (const f of r.findings) counts[f.severity]++;
  lines.push(
    "",
    `${r.stats.files} files (${r.stats.elfFiles} ELF) audited in ${r.stats.ms} ms: ${counts.error} error(s), ${counts.warning} warning(s)`,
  );
  return lines.join("\n") + "\n";
}
