// Installs the workspace, finds (or starts) Redis, and runs the five services with their log lines
// marked by name. Ctrl-C / SIGTERM stops them gracefully, then the private Redis if one was started.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { root, install, ensureRedis } from './lib.mjs'

const SERVICES = [
  { name: 'gateway', color: 36 },
  { name: 'token', color: 35 },
  { name: 'registration', color: 33 },
  { name: 'connections', color: 32 },
  { name: 'api', color: 34 }
]

install()
const redis = await ensureRedis({ persist: true })
const tty = process.stdout.isTTY
const children = new Map()
let stopping = false

function mark (name, color) {
  return tty ? `\x1b[${color}m[${name}]\x1b[0m ` : `[${name}] `
}

for (const { name, color } of SERVICES) {
  const env = { ...process.env, REDIS_URL: redis.url }
  if (tty && env.LOG_PRETTY === undefined) env.LOG_PRETTY = 'true'
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: join(root, 'services', name), env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.set(name, child)
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(mark(name, color) + line + '\n'))
  }
  child.on('exit', (code, signal) => {
    children.delete(name)
    if (!stopping) {
      process.stdout.write(`${mark(name, color)}exited (${signal ?? code}); stopping the suite\n`)
      void stop(code || 1)
    } else if (children.size === 0) {
      void redis.stop().then(() => process.exit(process.exitCode ?? 0))
    }
  })
}

async function stop (code = 0) {
  if (stopping) return
  stopping = true
  process.exitCode = code
  for (const child of children.values()) child.kill('SIGTERM')
  if (children.size === 0) { await redis.stop(); process.exit(code) }
}

process.on('SIGINT', () => void stop(0))
process.on('SIGTERM', () => void stop(0))
