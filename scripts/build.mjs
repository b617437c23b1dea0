// `npm run build`: the build's steps (scripts/lib.mjs `build`): tsc -b, the browser code's type-check, the
// account page's bundle. Exits 1 naming the step that failed.
import { build } from './lib.mjs'

const failed = build()
if (failed) {
  console.error(`npm run build: ${failed} failed`)
  process.exit(1)
}
