/**
 * 0. Start-up: each process exactly as production runs it (`node --conditions=compiled <dist entry>`, no
 * loader, no agent, NODE_ENV=production), from spawn to its first 200 on /health/ready (Redis connected,
 * its own checks passed: the gateway's includes fetching the JWKS), and its resident memory then (VmRSS).
 * Each process is started `rounds` times, one at a time; the figures are the median and the worst.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { LocalIssuer } from '../lib/jwt.ts'
import { serviceEntry, BENCH_KEK, ROOT, type Service } from '../lib/proc.ts'
import { RESOURCE } from '../lib/services.ts'
import { round } from '../lib/stats.ts'
import type { Benchmark } from './common.ts'

const SIZES = { tiny: { rounds: 1 }, full: { rounds: 5 } }
const PROCESSES: Array<Service | 'connections-worker'> = ['gateway', 'token', 'registration', 'connections', 'connections-worker', 'api']

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

function rssKb (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : NaN
}

async function startOnce (entry: string, env: Record<string, string>, port: number): Promise<{ readyMs: number, rssMb: number }> {
  const t0 = performance.now()
  const child = spawn(process.execPath, ['--conditions=compiled', entry], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000) })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${entry} exited (${child.exitCode}) before ready: ${stderr}`)
      if (performance.now() - t0 > 60000) throw new Error(`${entry} not ready after 60 s: ${stderr}`)
      try {
        const res = await request(`http://127.0.0.1:${port}/health/ready`)
        await res.body.dump()
        if (res.statusCode === 200) break
      } catch { /* not listening yet */ }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const readyMs = performance.now() - t0
    return { readyMs, rssMb: rssKb(child.pid ?? 0) / 1024 }
  } finally {
    child.kill('SIGTERM')
    await exited
  }
}

export const startup: Benchmark = {
  name: 'startup',
  title: '0. Start-up of the production build',
  async run (ctx, result) {
    const s = SIZES[ctx.size]
    const issuer = new LocalIssuer(RESOURCE)
    await issuer.start()
    try {
      const details: Record<string, unknown> = {}
      for (const name of PROCESSES) {
        const samples: Array<{ readyMs: number, rssMb: number }> = []
        for (let r = 0; r < s.rounds; r++) {
          const port = await freePort()
          const env: Record<string, string> = {
            PATH: process.env.PATH ?? '', NODE_ENV: 'production', LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: String(port),
            REDIS_URL: ctx.redisUrl, REDIS_PREFIX: ctx.prefix, SIGNING_KEYS_KEK: BENCH_KEK,
            ISSUER_URL: issuer.url, GATEWAY_RESOURCE_URL: RESOURCE
          }
          samples.push(await startOnce(serviceEntry(name), env, port))
        }
        const ready = samples.map((x) => x.readyMs).sort((a, b) => a - b)
        const rss = samples.map((x) => x.rssMb).sort((a, b) => a - b)
        const mid = (v: number[]): number => v[Math.floor(v.length / 2)]
        result.metrics.push(
          { name: `${name}: spawn → ready`, value: round(mid(ready), 3), unit: 'ms', note: `worst ${round(ready[ready.length - 1], 3)} ms over ${s.rounds}` },
          { name: `${name}: resident memory when ready`, value: round(mid(rss), 3), unit: 'MB', note: `worst ${round(rss[rss.length - 1], 3)} MB` }
        )
        details[name] = samples
        const worst = ready[ready.length - 1]
        result.targets.push({ name: `${name}: ready within the startup probe's budget (worst)`, target: '< 5000', value: round(worst, 3), unit: 'ms', met: worst < 5000 })
      }
      result.notes.push('Each process runs its compiled entry with `node --conditions=compiled` (what the image, compose and k8s run), against this machine\'s Redis; the gateway\'s readiness includes fetching a JWKS from a local issuer. Ready = the first 200 from /health/ready, polled every 5 ms; memory = VmRSS at that moment.')
      result.details = details
    } finally {
      await issuer.stop()
    }
  }
}
