// Plain Node (no dependencies): runs before anything is installed.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, mkdirSync, existsSync, writeFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
export const pnpmSpec = pkg.packageManager // e.g. pnpm@10.34.8

/**
 * The pinned pnpm as [command, ...args]: a `pnpm` on the PATH when it is exactly the pinned version (the
 * Dockerfile installs it), else the pinned version through npx (no global pnpm, no corepack).
 */
export function pnpmCommand () {
  const version = pnpmSpec.split('@')[1]
  const own = spawnSync('pnpm', ['--version'], { encoding: 'utf8' })
  if (own.status === 0 && own.stdout.trim() === version) return ['pnpm']
  return ['npx', '-y', pnpmSpec]
}

/** The services: every folder under services/ with a server entry, in a stable order. */
export function serviceNames () {
  return readdirSync(join(root, 'services')).filter((name) => existsSync(join(root, 'services', name, 'src', 'server.ts'))).sort()
}

/**
 * The build's steps (npm run build, npm start, the production folder): compile every package (`tsc -b
 * tsconfig.build.json`), type-check the browser code in its own project (DOM, no Node), and bundle the
 * account page's script into services/connections/dist/browser/page.js, which the compiled connections
 * service reads. Returns null, or the step that failed.
 */
export function build ({ stdio = 'inherit' } = {}) {
  const tsc = join(root, 'node_modules', '.bin', 'tsc')
  const steps = [
    [tsc, ['-b', 'tsconfig.build.json']],
    [tsc, ['-p', 'services/connections/src/browser/tsconfig.json']],
    [process.execPath, ['--conditions=compiled', 'services/connections/dist/views/page-script.js']]
  ]
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { cwd: root, stdio })
    if (r.status !== 0) return `${cmd === tsc ? 'tsc' : 'node'} ${args.join(' ')} (exit ${r.status ?? r.signal})`
  }
  return null
}

/** Installs the workspace with the pinned pnpm through npx (no global pnpm, no corepack). */
export function install () {
  if (process.env.SKIP_INSTALL === '1') return
  const args = ['-y', pnpmSpec, 'install', '--frozen-lockfile', '--reporter=append-only']
  const r = spawnSync('npx', args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_config_update_notifier: 'false' } })
  if (r.status !== 0) {
    console.error(`install failed: npx ${args.join(' ')} exited with ${r.status}`)
    process.exit(r.status ?? 1)
  }
}

/** True when a Redis answers PING at host:port within the timeout. */
export function redisAnswers (host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok) => { socket.destroy(); resolve(ok) }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (d) => done(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH')))
  })
}

export function onPath (cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

/** Local state (git-ignored): the private Redis's files and suite.env. USPL_DATA_DIR moves it (tests). */
export const dataDir = process.env.USPL_DATA_DIR || join(root, '.data')
export const suiteEnvFile = join(dataDir, 'suite.env')

/** Records the suite's REDIS_URL for `npm run cli` and `npm run bench` (KEY=value lines). */
export function writeSuiteEnv (url) {
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(suiteEnvFile, `# written by npm start (scripts/start.mjs) while it runs; read by npm run cli and npm run bench\nREDIS_URL=${url}\n`)
}

/** Removes suite.env if it still names `url` (another suite may have started since). */
export function removeSuiteEnv (url) {
  if (readSuiteEnv().REDIS_URL === url) rmSync(suiteEnvFile, { force: true })
}

export function readSuiteEnv () {
  if (!existsSync(suiteEnvFile)) return {}
  const env = {}
  for (const line of readFileSync(suiteEnvFile, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim())
    if (m) env[m[1]] = m[2]
  }
  return env
}

/**
 * Finds a Redis: REDIS_URL if set; else one on 127.0.0.1:6379; else a private redis-server (append-only
 * file under .data/redis, git-ignored) that stops with the caller. `privateOnly` skips the first two.
 * Exits with advice when none can be had.
 */
export async function ensureRedis ({ persist, privateOnly = false }) {
  if (!privateOnly && process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} }
  if (!privateOnly && await redisAnswers('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', stop: async () => {} }
  if (!onPath('redis-server')) {
    console.error('No Redis: nothing answers on 127.0.0.1:6379, REDIS_URL is unset, and redis-server is not on the PATH.\n' +
      'Install one (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), or run `docker compose up -d redis`, or set REDIS_URL=redis://host:6379.')
    process.exit(1)
  }
  const port = Number(process.env.PRIVATE_REDIS_PORT ?? 6390)
  const dir = join(dataDir, 'redis')
  mkdirSync(dir, { recursive: true })
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '']
  args.push('--appendonly', persist ? 'yes' : 'no')
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise((resolve, reject) => {
    let out = ''
    proc.stdout.on('data', (d) => { out += d; if (out.includes('Ready to accept connections')) resolve() })
    proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out.slice(-400)}`)))
  }).catch((err) => { console.error(err.message); process.exit(1) })
  console.log(`[suite] started a private redis-server on 127.0.0.1:${port} (pid ${proc.pid}, data in ${dir})`)
  return {
    pid: proc.pid,
    url: `redis://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve()
      proc.once('exit', resolve)
      proc.kill('SIGTERM')
    })
  }
}

export { existsSync }
