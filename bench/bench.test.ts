// Runs every benchmark once at the tiny size, as `npm run bench` does, so the suite keeps working. It
// asserts the shape of what a run writes and that every figure is a finite number; never a timing (a
// benchmark is not a timed test). The run uses this test's own Redis key prefix, removed afterwards.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testRedis, TEST_REDIS_URL } from '@uspl/testing'
import type { RunResult } from './lib/report.ts'

// ten benchmarks at the tiny size, beside the rest of the suite on two shared cores
t.setTimeout(900000)

const root = join(import.meta.dirname, '..')
const NAMES = ['startup', 'mcp-methods', 'revocation', 'token-endpoint', 'session-cost', 'registration-flood', 'api-read', 'ssf-push', 'faults', 'soak']

const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x)

/** `bench/run.ts --size tiny <args>` under the test's prefix, into a temporary folder: its exit code and output. */
async function runBench (t: Test, prefix: string, args: string[]): Promise<{ code: number | null, log: string, out: string }> {
  const out = mkdtempSync(join(tmpdir(), 'uspl-bench-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--size', 'tiny', ...args, '--out', out, '--prefix', prefix], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', REDIS_URL: TEST_REDIS_URL },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let log = ''
  child.stdout.on('data', (d) => { log += d })
  child.stderr.on('data', (d) => { log += d })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, log, out }
}

t.test('npm run bench -- --size tiny: every benchmark runs and writes its figures', async (t) => {
  const r = await testRedis(t)
  const { code, log, out } = await runBench(t, r.prefix, ['--profile', 'always'])
  t.equal(code, 0, 'the run succeeds', { log: log.slice(-4000) })

  const jsons = readdirSync(out).filter((f) => f.endsWith('.json'))
  t.equal(jsons.length, 1, 'one JSON result')
  t.ok(existsSync(join(out, 'latest.md')), 'latest.md')
  const run = JSON.parse(readFileSync(join(out, jsons[0]), 'utf8')) as RunResult
  t.equal(run.schema, 'uspl-bench/1')
  t.equal(run.size, 'tiny')
  t.ok(finite(run.machine.cpus) && run.machine.node.startsWith('v'), 'machine described')
  t.same(run.benchmarks.map((b) => b.name), NAMES, 'every benchmark, in order')

  for (const b of run.benchmarks) {
    t.test(b.name, async (t) => {
      t.equal(b.status, 'ok', b.error ?? 'ran')
      t.ok(b.metrics.length > 0, 'has figures')
      for (const m of b.metrics) {
        t.ok(finite(m.value), `${m.name}: value ${m.value} is finite`)
        if (m.baseline !== undefined) t.ok(finite(m.baseline), `${m.name}: baseline ${m.baseline} is finite`)
        if (m.ratio !== undefined) t.ok(finite(m.ratio), `${m.name}: ratio ${m.ratio} is finite`)
        t.type(m.unit, 'string')
      }
      t.ok(b.targets.length > 0, 'judges at least one target')
      for (const target of b.targets) {
        t.ok(finite(target.value), `${target.name}: ${target.value} is finite`)
        t.type(target.met, 'boolean')
        t.match(target.target, /^(>=|<=|<|=) /)
      }
      // start-up runs each process bare (no agent, exactly production's command): nothing to profile
      if (b.name !== 'startup') t.ok(b.profiles.length > 0, 'profiled (--profile always)')
      for (const p of b.profiles) {
        t.ok(existsSync(join(out, p.file)), `${p.process}: profile file written`)
        t.ok(p.summary.top.length > 0, `${p.process}: top functions`)
        for (const f of p.summary.top) t.ok(finite(f.selfMs) && finite(f.selfPct) && f.function.length > 0, `${p.process}: ${f.function}`)
        t.ok(p.summary.byPackage.length > 0, `${p.process}: by package`)
      }
    })
  }

  const md = readFileSync(join(out, 'latest.md'), 'utf8')
  t.match(md, /^# Benchmarks \(tiny\)/)
  t.match(md, /## Targets\n\n\| benchmark \| target \| measured \| met \|/)
  for (const b of run.benchmarks) t.ok(md.includes(`## ${b.title}`), `table for ${b.title}`)
  t.notMatch(md, /\| (NaN|undefined|null) /, 'no missing figures in the table')

  // the run removed its own keys (the prefix teardown would, too)
  const left = await r.raw.keys(`${r.prefix}*`)
  t.same(left, [], 'no keys left under the run\'s prefix')
})

/** pids of processes whose environment names the Redis prefix (the services a benchmark started get it) */
function processesWithPrefix (prefix: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').some((v) => v.startsWith('REDIS_PREFIX=') && v.includes(prefix))) found.push(Number(entry))
    } catch { /* gone, or not ours to read */ }
  }
  return found
}

t.test('a benchmark past its deadline fails, its processes are stopped, and the run goes on', async (t) => {
  const r = await testRedis(t)
  // bench/fixtures/hang.ts starts a server and never finishes; the second one runs only if the run goes on
  const { code, log, out } = await runBench(t, r.prefix, ['--with', 'bench/fixtures/hang.ts', '--with', 'bench/fixtures/hang.ts', '--deadline', '3', '--profile', 'never'])
  t.equal(code, 1, 'the run fails', { log: log.slice(-4000) })
  const run = JSON.parse(readFileSync(join(out, readdirSync(out).filter((f) => f.endsWith('.json'))[0]), 'utf8')) as RunResult
  t.same(run.benchmarks.map((b) => [b.name, b.status]), [['hang', 'error'], ['hang', 'error']], 'each fails on its own, and the run goes on to the next')
  for (const b of run.benchmarks) t.match(b.error, /hang did not finish within 3 s/)
  t.equal(log.match(/hang: stopped 1 server process\(es\) it left running/g)?.length, 2, 'the server each hang started was stopped')
  t.same(processesWithPrefix(r.prefix), [], 'no server process of the run is left')
})
