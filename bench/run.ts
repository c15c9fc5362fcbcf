/** `npm run bench`: runs every benchmark in bench/ (or those named on the command line). */
import { auditBench } from "./audit.js";
import { buildBench } from "./build.js";
import { deployBench } from "./deploy.js";
import { hostCallsBench } from "./host-calls.js";
import { hostColdstartBench } from "./host-coldstart.js";
import { engineBench } from "./engine.js";
import { onefileBench } from "./onefile.js";
import { runtimeStartupBench } from "./runtime-startup.js";

const benches: Record<string, () => Promise<void>> = {
  "runtime-startup": runtimeStartupBench,
  audit: auditBench,
  build: buildBench,
  onefile: onefileBench,
  "host-calls": hostCallsBench,
  "host-coldstart": hostColdstartBench,
  engine: engineBench,
  deploy: deployBench,
};
const wanted = process.argv.slice(2);
for (const [name, fn] of Object.entries(benches)) {
  if (wanted.length && !wanted.includes(name)) continue;
  await fn();
}
