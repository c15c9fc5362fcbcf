/** Failure messages show the part of a tool's output that holds the cause. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { failureExcerpt } from "../src/util/exec.js";

test("a pip failure shows its ERROR lines, not only a tail that says 'See above'", () => {
  const output = [
    "Processing ./source",
    "  Installing build dependencies: started",
    ...Array.from({ length: 40 }, (_, i) => `  noise line ${i}`),
    "ERROR: Could not find a version that satisfies the requirement nump (from versions: none)",
    "ERROR: No matching distribution found for nump",
    ...Array.from({ length: 20 }, (_, i) => `  later noise ${i}`),
    "note: This error originates from a subprocess, and is likely not a problem with pip.",
    "See above for output.",
  ].join("\n");
  const excerpt = failureExcerpt(output);
  assert.match(excerpt, /No matching distribution found for nump/);
  assert.match(excerpt, /See above for output\.$/);
  assert.doesNotMatch(excerpt, /noise line 3\b/);
});

test("a build backend's traceback is shown from its start", () => {
  const output = [
    ...Array.from({ length: 30 }, (_, i) => `running step ${i}`),
    "Traceback (most recent call last):",
    '  File "setup.py", line 3, in <module>',
    "RuntimeError: the project needs libfoo headers",
    "error: subprocess-exited-with-error",
  ].join("\n");
  const excerpt = failureExcerpt(output);
  assert.ok(excerpt.startsWith("Traceback (most recent call last):"), excerpt);
  assert.match(excerpt, /needs libfoo headers/);
});

test("output without an error line: its last 15 lines", () => {
  const output = Array.from({ length: 50 }, (_, i) => `line ${i}`).join("\n");
  assert.equal(
    failureExcerpt(output),
    Array.from({ length: 15 }, (_, i) => `line ${35 + i}`).join("\n"),
  );
});
