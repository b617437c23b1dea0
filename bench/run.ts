/**
 * `npm run bench [-- --size tiny|full] [--only name[,name]] [--profile missed|always|never] [--out dir] [--publish]`
 *
 * Runs the benchmarks against real service processes on one Redis (REDIS_URL, default 127.0.0.1:6379;
 * `npm run bench` takes the one `npm start` uses from .data/suite.env when REDIS_URL is unset), under a key
 * prefix of their own that is deleted afterwards, and writes <out>/<timestamp>.json and <out>/latest.md.
 * The default out is bench/results/local (git-ignored); --publish writes to bench/results, the committed
 * figures. Exit code 1 when a benchmark could not run (a missed target is a result, not a failure).
 */
import { cpus, totalmem, platform, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { mkdirSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { spawnSync } from 'node:child_process'
import { BenchRedis } from './lib/seed.ts'
import { unexpectedExits, stopEveryProcess } from './lib/proc.ts'
import { writeResults, type RunResult } from './lib/report.ts'
import type { Benchmark, BenchResult, ProfileMode, RunContext, Size } from './lib/types.ts'
import { startup } from './benchmarks/startup.ts'
import { mcpMethods } from './benchmarks/mcp-methods.ts'
import { revocation } from './benchmarks/revocation.ts'
import { tokenEndpoint } from './benchmarks/token-endpoint.ts'
import { sessionCost } from './benchmarks/session-cost.ts'
import { registrationFlood } from './benchmarks/registration-flood.ts'
import { apiRead } from './benchmarks/api-read.ts'
import { ssfPush } from './benchmarks/ssf-push.ts'
import { faults } from './benchmarks/faults.ts'
import { soak } from './benchmarks/soak.ts'

export const BENCHMARKS: Benchmark[] = [startup, mcpMethods, revocation, tokenEndpoint, sessionCost, registrationFlood, apiRead, ssfPush, faults, soak]

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: 'full' },
    only: { type: 'string', multiple: true },
    profile: { type: 'string', default: 'missed' },
    out: { type: 'string' },
    publish: { type: 'boolean', default: false },
    prefix: { type: 'string' },
    deadline: { type: 'string' },
    with: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' }
  }
})

if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--size tiny|full] [--only ${BENCHMARKS.map((b) => b.name).join('|')}[,…]] [--profile missed|always|never] [--out dir | --publish] [--prefix bench:x:] [--deadline seconds] [--with file.ts]\n`)
  process.exit(0)
}
const size = values.size as Size
if (size !== 'tiny' && size !== 'full') throw new Error(`--size must be tiny or full, not ${values.size}`)
const profile = values.profile as ProfileMode
if (!['missed', 'always', 'never'].includes(profile)) throw new Error(`--profile must be missed, always or never, not ${values.profile}`)
/** how long one benchmark may run before it fails and its processes are stopped (--deadline overrides) */
const DEADLINE_S: Record<Size, number> = { tiny: 300, full: 1800 }
if (values.deadline !== undefined) {
  const s = Number(values.deadline)
  if (!(s > 0)) throw new Error(`--deadline must be a number of seconds, not ${values.deadline}`)
  DEADLINE_S[size] = s
}
const only = (values.only ?? []).flatMap((o) => o.split(',')).map((o) => o.trim()).filter(Boolean)
for (const o of only) if (!BENCHMARKS.some((b) => b.name === o)) throw new Error(`unknown benchmark ${o}: one of ${BENCHMARKS.map((b) => b.name).join(', ')}`)
// --with: a benchmark of one's own, from a module whose default export is a Benchmark (one being written,
// or a test's), run after the selected ones
const extra = await Promise.all((values.with ?? []).map(async (file) => (await import(pathToFileURL(resolve(file)).href) as { default: Benchmark }).default))
const selected = [...(only.length || extra.length ? BENCHMARKS.filter((b) => only.includes(b.name)) : BENCHMARKS), ...extra]

// the services run compiled, as in production: bring dist/ up to date first (incremental)
const build = spawnSync(join(import.meta.dirname, '..', 'node_modules', '.bin', 'tsc'), ['-b', 'tsconfig.build.json'], { cwd: join(import.meta.dirname, '..'), stdio: 'inherit' })
if (build.status !== 0) throw new Error('the build failed (tsc -b tsconfig.build.json)')

const startedAt = new Date()
const loadStart = loadavg()
const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
const outDir = values.out ?? join(import.meta.dirname, 'results', values.publish ? '' : 'local')
const profilesDir = join(outDir, 'profiles')
mkdirSync(profilesDir, { recursive: true })
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const t00 = performance.now()
const log = (msg: string): void => { process.stderr.write(`[bench +${((performance.now() - t00) / 1000).toFixed(1)}s] ${msg}\n`) }

const results: BenchResult[] = []
let redisVersion = ''
for (const b of selected) {
  // a fresh prefix per benchmark: nothing one leaves behind can skew the next
  const bench = await BenchRedis.open(redisUrl, values.prefix ? `${values.prefix}${b.name}:` : undefined)
  if (!redisVersion) redisVersion = /redis_version:(\S+)/.exec(await bench.redis.info('server'))?.[1] ?? '?'
  const ctx: RunContext = { size, profile, bench, redisUrl, prefix: bench.prefix, profilesDir, stamp, log: (m) => log(`${b.name}: ${m}`) }
  const result: BenchResult = { name: b.name, title: b.title, status: 'ok', durationS: 0, metrics: [], targets: [], profiles: [], notes: [], details: {} }
  const t0 = performance.now()
  log(`${b.name} (${size}) …`)
  unexpectedExits.length = 0
  let deadline: NodeJS.Timeout | undefined
  try {
    // a benchmark that hangs (a stream that never ends, a server that stops answering) fails on its own
    // instead of holding the whole run, and CI's, until something outside kills it
    await Promise.race([b.run(ctx, result), new Promise<never>((_resolve, reject) => {
      deadline = setTimeout(() => reject(new Error(`${b.name} did not finish within ${DEADLINE_S[size]} s (the deadline of one ${size} benchmark)`)), DEADLINE_S[size] * 1000)
    })])
  } catch (err) {
    result.status = 'error'
    // a server process that died is the cause, not the request that found it gone
    const exits = unexpectedExits.splice(0)
    result.error = [...exits, (err as Error).stack ?? String(err)].join('\n')
    log(`${b.name} failed: ${(err as Error).message}${exits.length ? `\n${exits.join('\n')}` : ''}`)
  } finally {
    clearTimeout(deadline)
    // the processes a benchmark that overran still holds; none when it cleaned up after itself
    const left = await stopEveryProcess()
    if (left > 0) log(`${b.name}: stopped ${left} server process(es) it left running`)
    await bench.close().catch((err: Error) => log(`cleanup of ${bench.prefix} failed: ${err.message}`))
  }
  result.durationS = Math.round((performance.now() - t0) / 100) / 10
  for (const t of result.targets) log(`${b.name}: ${t.name} ${t.target}: ${t.value} ${t.unit} → ${t.met ? 'met' : 'MISSED'}`)
  log(`${b.name} done in ${result.durationS} s`)
  results.push(result)
}

const run: RunResult = {
  schema: 'uspl-bench/1',
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  size,
  command: `npm run bench -- --size ${size}${only.length ? ` --only ${only.join(',')}` : ''}`,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, platform: platform(), redis: redisVersion, loadAverage: { start: loadStart, end: loadavg() } },
  benchmarks: results
}
const files = writeResults(outDir, stamp, run)
log(`wrote ${files.json} and ${files.md}`)
process.exit(results.some((r) => r.status === 'error') ? 1 : 0)
