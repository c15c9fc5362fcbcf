/** Which interpreter a Python pool runs: the one given (never a PATH lookup), or a managed runtime. */
import * as path from "node:path";
import { PyportError, type ErrorCode } from "../errors.js";
import { statPath } from "./process.js";

/**
 * Without `python`: a portable runtime built (once, in pyport's cache) from the newest CPython
 * 3.8+ here — in a worker thread (managed-runtime.ts), so the build's file work never blocks
 * this event loop.
 */
export async function managedInterpreter(): Promise<string> {
  const { Worker } = await import("node:worker_threads");
  return new Promise((resolve, reject) => {
    const thread = new Worker(new URL("./managed-runtime.js", import.meta.url), {
      // A thread inherits the process's flags; --input-type (node -e) is refused for a file.
      execArgv: process.execArgv.filter((a) => !a.startsWith("--input-type")),
    });
    type Reply = {
      interpreter?: string;
      error?: { code: ErrorCode; message: string; hint?: string };
    };
    thread.once("message", (m: Reply) => {
      if (m.interpreter) resolve(m.interpreter);
      else reject(new PyportError(m.error!.code, m.error!.message, { hint: m.error!.hint }));
      void thread.terminate();
    });
    thread.once("error", reject);
    thread.once("exit", (code) =>
      reject(new PyportError("E_INTERNAL", `the runtime builder thread exited with code ${code}`)),
    );
  });
}

/** The interpreter `python` names: a runtime or bundle directory's bin/python3, or the path itself. */
export function givenInterpreter(python: string): string {
  if (!python.includes("/")) {
    throw new PyportError(
      "E_USAGE",
      `python: ${JSON.stringify(python)} is not a path; pyport does not search PATH`,
      {
        hint: "Give a pyport runtime or bundle directory, or an interpreter path such as /usr/bin/python3.12.",
      },
    );
  }
  const st = statPath(python);
  if (!st)
    throw new PyportError("E_NOT_FOUND", `python: ${python} does not exist`, {
      hint: "Give a pyport runtime or bundle directory, or an interpreter path.",
    });
  if (!st.isDirectory) return path.resolve(python);
  const exe = path.join(python, "bin", "python3");
  if (!statPath(exe))
    throw new PyportError("E_NOT_FOUND", `python: ${python} is a directory without bin/python3`, {
      hint: "Give a pyport runtime or bundle directory (made by pyport runtime create or pyport build).",
    });
  return path.resolve(exe);
}
