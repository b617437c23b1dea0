/**
 * The account page's script: the typed browser modules of src/browser/ (page.ts and what it imports),
 * bundled by esbuild into one classic script that the page inlines under its CSP nonce.
 *
 * The build (scripts/lib.mjs `build`: npm run build, npm start, the production folder) type-checks them
 * (src/browser/tsconfig.json: DOM, no Node) and runs this file compiled, which writes
 * dist/browser/page.js; the compiled service reads that file. Run from source (tests, tsx) the service
 * bundles here instead, once per process, when the page's routes are registered. esbuild is a development
 * dependency: the production folder never has it, and never needs it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** the package's root, from src/views/ or dist/views/ alike */
const ROOT = new URL('../../', import.meta.url)
const ENTRY = new URL('src/browser/page.ts', ROOT)
const BUNDLE = new URL('dist/browser/page.js', ROOT)

/** Bundles the page's script from the sources. */
export async function bundlePageScript (): Promise<string> {
  const { build } = await import('esbuild')
  const result = await build({
    entryPoints: [fileURLToPath(ENTRY)],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent'
  })
  const script = result.outputFiles[0].text
  // inlined in a <script> element: a "</script" inside it would end the element early
  if (/<\/script/i.test(script)) throw new Error('the bundled page script contains "</script"')
  return script
}

let script: Promise<string> | undefined

/** The page's script: the build's bundle when compiled, bundled once now when run from source. */
export function pageScript (): Promise<string> {
  script ??= import.meta.url.endsWith('.ts')
    ? bundlePageScript()
    : readFile(BUNDLE, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`the account page's script is missing (${fileURLToPath(BUNDLE)}: ${err.code ?? err.message}); the build writes it (npm run build)`)
    })
  return script
}

// the build's step: `node --conditions=compiled services/connections/dist/views/page-script.js`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await mkdir(new URL('.', BUNDLE), { recursive: true })
  await writeFile(BUNDLE, await bundlePageScript())
}
