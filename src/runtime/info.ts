/** `runtime info`: what a runtime is, from its manifest and its size on disk. */
import { treeSize } from "../util/fs.js";
import { readManifest, type RuntimeManifest } from "./manifest.js";

export interface RuntimeInfo {
  dir: string;
  bytes: number;
  manifest: RuntimeManifest;
}

export async function runtimeInfo(dir: string): Promise<RuntimeInfo> {
  return { dir, manifest: await readManifest(dir), bytes: await treeSize(dir) };
}
