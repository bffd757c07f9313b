// Runs the dashboard's unit tests: esbuild bundles each test/*.test.ts for Node into
// .test-build/ (git-ignored), then `node --test` runs them. `npm test` and check-web.sh call it.
import { build } from "esbuild";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tests = readdirSync(join(here, "test")).filter((f) => f.endsWith(".test.ts"));
const outdir = join(here, ".test-build");
await build({
  entryPoints: tests.map((f) => join(here, "test", f)),
  outdir,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node18",
  logLevel: "warning",
});
const built = tests.map((f) => join(outdir, f.replace(/\.ts$/, ".mjs")));
const run = spawnSync(process.execPath, ["--test", ...built], { stdio: "inherit" });
process.exit(run.status ?? 1);
