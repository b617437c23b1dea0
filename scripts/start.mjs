// `npm start [-- --private-redis]`: installs the workspace, builds it (`tsc -b`, incremental, and the page bundle), finds (or
// starts) Redis, and runs every service from its compiled entry, the way the image does, with log lines
// marked by name. The follow-up worker runs as its own process (the connections API with
// WORKER_ENABLED=false), as in compose and k8s.
//
// It prints the REDIS_URL it uses and records it in .data/suite.env, which `npm run cli` and `npm run bench`
// read when REDIS_URL is unset. SIGINT or SIGTERM (to this process or to npm, which forwards them) stops the
// services gracefully, then the private Redis if one was started. If its parent goes away without a
// signal (npm killed, the terminal closed), it stops everything the same way: nothing is left running.
// A PORT in the environment applies to every process (tests set PORT=0).
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { root, install, build, ensureRedis, writeSuiteEnv, removeSuiteEnv, suiteEnvFile } from './lib.mjs'

/** One entry per process; a new service adds one line. */
const PROCESSES = [
  { name: 'gateway', color: 36, entry: 'services/gateway/dist/server.js' },
  { name: 'token', color: 35, entry: 'services/token/dist/server.js' },
  { name: 'registration', color: 33, entry: 'services/registration/dist/server.js' },
  { name: 'connections', color: 32, entry: 'services/connections/dist/server.js', env: { WORKER_ENABLED: 'false' } },
  { name: 'connections-worker', color: 34, entry: 'services/connections/dist/worker.js' },
  { name: 'api', color: 94, entry: 'services/api/dist/server.js' }
]

const tty = process.stdout.isTTY
const mark = (name, color) => tty ? `\x1b[${color}m[${name}]\x1b[0m ` : `[${name}] `
const say = (line) => process.stdout.write(`${mark('suite', 1)}${line}\n`)
// a closed terminal or a dead reader must not crash the supervisor (that would orphan the services)
process.stdout.on('error', () => {})

install()
const failed = build()
if (failed) {
  console.error(`npm start: the build failed (${failed})`)
  process.exit(1)
}
const redis = await ensureRedis({ persist: true, privateOnly: process.argv.includes('--private-redis') })
writeSuiteEnv(redis.url)
say(`REDIS_URL=${redis.url} (recorded in ${suiteEnvFile} for npm run cli and npm run bench)`)

const children = new Map()
let stopping = false
const parent = process.ppid

for (const { name, color, entry, env: own } of PROCESSES) {
  const env = { ...process.env, REDIS_URL: redis.url, ...own }
  if (tty && env.LOG_PRETTY === undefined) env.LOG_PRETTY = 'true'
  const child = spawn(process.execPath, ['--conditions=compiled', entry], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.set(name, child)
  say(`${name} started (pid ${child.pid})`)
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(mark(name, color) + line + '\n'))
  }
  child.on('exit', (code, signal) => {
    children.delete(name)
    if (!stopping) {
      say(`${name} exited (${signal ?? code}); stopping the suite`)
      void stop(code || 1)
    } else if (children.size === 0) {
      void finish()
    }
  })
}

async function finish () {
  removeSuiteEnv(redis.url)
  await redis.stop()
  say('stopped')
  process.exit(process.exitCode ?? 0)
}

async function stop (code = 0) {
  if (stopping) return
  stopping = true
  process.exitCode = code
  for (const child of children.values()) child.kill('SIGTERM')
  if (children.size === 0) await finish()
}

process.on('SIGINT', () => void stop(0))
process.on('SIGTERM', () => void stop(0))
process.on('SIGHUP', () => void stop(0))
// The parent died without passing a signal on: this process was re-parented, or (under `npm start`, whose
// `sh -c` stays between npm and this process) the grandparent, npm, is gone.
const watched = [parent]
if (process.env.npm_lifecycle_event) {
  const ps = spawnSync('ps', ['-o', 'ppid=', '-p', String(parent)], { encoding: 'utf8' })
  const grandparent = Number(ps.stdout?.trim())
  if (ps.status === 0 && grandparent > 1) watched.push(grandparent)
}
const exists = (pid) => {
  try { process.kill(pid, 0); return true } catch (err) { return err.code === 'EPERM' }
}
setInterval(() => {
  const gone = process.ppid !== parent ? parent : watched.find((pid) => !exists(pid))
  if (gone !== undefined) {
    if (!stopping) say(`the parent process (pid ${gone}) is gone; stopping the suite`)
    void stop(0)
  }
}, 250).unref()
