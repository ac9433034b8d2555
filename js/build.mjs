// Bundle one ESM file per widget into ../reflectnb/static/ (anywidget loads them as `_esm`).
import { build } from "esbuild";
import { mkdirSync } from "node:fs";

const outdir = new URL("../reflectnb/static/", import.meta.url).pathname;
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: { browser: "src/browser.ts", live: "src/live.ts", tokens: "src/tokens.ts", tree: "src/tree.ts" },
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  outdir,
  logLevel: "info",
});
