/** `npm run bench`: runs every benchmark in bench/ (or those named on the command line). */
import { runtimeStartupBench } from "./runtime-startup.js";

const benches: Record<string, () => Promise<void>> = { "runtime-startup": runtimeStartupBench };
const wanted = process.argv.slice(2);
for (const [name, fn] of Object.entries(benches)) {
  if (wanted.length && !wanted.includes(name)) continue;
  await fn();
}
