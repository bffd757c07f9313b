// Builds the dashboard into the Python package: one bundle (dashboard.js) beside index.html and
// dashboard.css, copied from public/. Deterministic: no timestamps, no absolute paths, no
// source maps, a fixed target, so the same sources always give the same bytes (make test checks).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "becomingone", "api", "static");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.ts")],
  outfile: join(out, "dashboard.js"),
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});
for (const name of ["index.html", "dashboard.css"]) {
  copyFileSync(join(here, "public", name), join(out, name));
}
// The Choir page (/choir/): its own bundle, page and style under static/choir/.
mkdirSync(join(out, "choir"), { recursive: true });
await build({
  entryPoints: [join(here, "src", "choir", "main.ts")],
  outfile: join(out, "choir", "choir.js"),
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});
for (const name of ["index.html", "choir.css"]) {
  copyFileSync(join(here, "public", "choir", name), join(out, "choir", name));
}
