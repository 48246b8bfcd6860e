/**
 * `npm run build`, after `tsc` has compiled lab/ file by file into dist/lab/:
 *
 * 1. The CLI and the workload process as users run them, bundled with esbuild, in place, over
 * tsc's output for their entry files:
 *
 *   dist/lab/cli/main.js         the `lab` command (package.json's bin)
 *   dist/lab/workload/host.js    the lab's workload process
 *   dist/lab/chunks/*.js         the modules they share, and each verb's code (still loaded only
 *                                when that verb runs: the CLI's dynamic imports become chunks)
 *
 * Why: start-up is most of a short verb's time, and Node loads one ES module at a time, each
 * a file to find, read and compile; a few chunks instead of 150 files (and zod's, yaml's and
 * commander's own) cut `lab up` + `lab down` by about 150 ms (docs/benchmarks.md). The rest
 * of dist/lab/ stays tsc's output: the programmatic API, the scripts and the tests use it.
 *
 * Left outside the bundle, loaded from node_modules at run time: koffi (a native addon),
 * dockerode (only `lab docker` loads it; it carries optional native modules) and pino (loaded
 * through createRequire on the first log line, see lab/log.ts).
 *
 * 2. The built-in scenarios, validated: dist/scenarios/<name>.json (see lab/topology/prebuilt.ts).
 */
import { build, type Plugin } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadTopology } from '../lab/topology/load.js';
import { TOPOLOGIES_DIR } from '../lab/topology/paths.js';
import { PREBUILT_DIR, validationCode, type PrebuiltScenario } from '../lab/topology/prebuilt.js';
import { PROJECT_ROOT } from '../lab/util/project.js';

const BUNDLED_ENTRIES = ['cli/main', 'workload/host'];

/**
 * zod's index of locales imports every language's messages (64 modules), which would load
 * with any verb that validates anything; the lab speaks English only (lab/state/store.ts sets it).
 */
const englishOnly: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /locales\/index\.js$/ }, (args) => (args.importer.includes('/node_modules/zod/') ? { path: resolve(args.resolveDir, args.path), namespace: 'zod-en' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (args) => ({ contents: "export { default as en } from './en.js';", resolveDir: dirname(args.path), loader: 'js' }));
  },
};

async function bundle(): Promise<void> {
  const out = join(PROJECT_ROOT, 'dist', 'lab');
  rmSync(join(out, 'chunks'), { recursive: true, force: true });
  await build({
    entryPoints: BUNDLED_ENTRIES.map((e) => join(out, `${e}.js`)),
    outbase: out,
    outdir: out,
    entryNames: '[dir]/[name]',
    chunkNames: 'chunks/[name]-[hash]',
    allowOverwrite: true,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node18',
    external: ['koffi', 'dockerode', 'pino'],
    plugins: [englishOnly],
    // commander and other CommonJS packages call require() for Node's built-ins.
    banner: { js: "import { createRequire as __labRequire } from 'node:module'; const require = __labRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  // tsc's source maps describe the files this replaced.
  for (const e of BUNDLED_ENTRIES) rmSync(join(out, `${e}.js.map`), { force: true });
}

/** Each topologies/<name>.yaml, validated as `lab up <name>` would, with its text and the code that validated it. */
function prebuildScenarios(): void {
  rmSync(PREBUILT_DIR, { recursive: true, force: true });
  mkdirSync(PREBUILT_DIR, { recursive: true });
  const code = validationCode();
  for (const file of readdirSync(TOPOLOGIES_DIR).filter((f) => /^[a-z][a-z0-9-]*\.yaml$/.test(f))) {
    const { topology, path } = loadTopology(join(TOPOLOGIES_DIR, file));
    const saved: PrebuiltScenario = { source: readFileSync(path, 'utf8'), code, topology };
    writeFileSync(join(PREBUILT_DIR, file.replace(/\.yaml$/, '.json')), JSON.stringify(saved));
  }
}

await bundle();
prebuildScenarios();
