// Installs the workspace, makes sure a Redis answers, typechecks, assembles the production folder once
// (scripts/assemble-prod.mjs into a temp dir, USPL_PROD_DIR for test/deploy/), and runs every tap test
// against it. Prints, as its last line, "N passed, N failed" from tap's own counts (plus the typecheck and
// the assembly).
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { root, install, ensureRedis } from './lib.mjs'

install()
const redis = await ensureRedis({ persist: false })
const env = { ...process.env, REDIS_URL: redis.url }

const bin = (name) => join(root, 'node_modules', '.bin', name)
let failed = 0
let passed = 0

// the Node code, then the browser code in its own project (DOM, no Node), as `npm run typecheck`
const tsc = [['-p', 'tsconfig.json', '--noEmit'], ['-p', 'services/connections/src/browser/tsconfig.json']]
  .every((args) => spawnSync(bin('tsc'), args, { cwd: root, stdio: 'inherit', env }).status === 0)
if (tsc) { passed++; console.log('typecheck: ok') } else { failed++; console.log('typecheck: FAILED') }

// the image's production folder, once for every deployment test (they assemble their own when run alone)
const prodDir = mkdtempSync(join(tmpdir(), 'uspl-prod-'))
const assembled = spawnSync(process.execPath, [join(root, 'scripts', 'assemble-prod.mjs'), prodDir], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], env })
if (assembled.status === 0) { passed++; env.USPL_PROD_DIR = prodDir; console.log('production folder: ok') } else { failed++; console.log('production folder: FAILED (scripts/assemble-prod.mjs)') }

const files = process.argv.slice(2)
const args = [...(files.length ? files : ['services/*/test/**/*.test.ts', 'shared/*/test/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'])]
const reporter = process.stdout.isTTY ? 'base' : 'tap'
const code = await new Promise((resolve) => {
  const child = spawn(bin('tap'), ['--reporter', reporter, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'], shell: false })
  let tail = ''
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk)
    tail = (tail + chunk.toString()).slice(-4000)
  })
  child.on('exit', (c) => {
    const m = /# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?/.exec(tail)
    if (m) {
      passed += Number(m[2] ?? 0)
      failed += Number(m[3] ?? 0)
    } else {
      failed++
      console.log('tap printed no summary (it crashed or was killed)')
    }
    resolve(c ?? 1)
  })
})
await redis.stop()
rmSync(prodDir, { recursive: true, force: true })
console.log(`${passed} passed, ${failed} failed`)
process.exit(code !== 0 || failed > 0 ? 1 : 0)
