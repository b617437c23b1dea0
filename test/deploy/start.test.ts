// `npm start` as a good citizen (issue 10): started through npm, against a private Redis on a free port,
// it prints the REDIS_URL it uses and records it for `npm run cli`; SIGTERM to the npm process (which does
// not reach start.mjs through npm's `sh -c`), or npm dying outright, stops every service, the worker and the
// private Redis, and removes the record. Processes that are not this test's children announce no exit, so
// their end is watched in /proc. The README's workspace API example (seed, create-api-key --user, GET
// /v1/workspaces with the key) runs against the started suite.
import t, { type Test } from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, until } from '@uspl/testing'
import { ROOT } from './helpers.ts'

const PROCESSES = ['gateway', 'token', 'registration', 'connections', 'connections-worker', 'api']

function alive (pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}
const parentOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1])

interface Suite { npm: ChildProcess, output: () => string, pids: Record<string, number>, redisUrl: string, dataDir: string }

async function startSuite (t: Test): Promise<Suite> {
  const dataDir = mkdtempSync(join(tmpdir(), 'uspl-start-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env: Record<string, string> = { ...process.env as Record<string, string>, SKIP_INSTALL: '1', PORT: '0', USPL_DATA_DIR: dataDir, PRIVATE_REDIS_PORT: String(await freePort()), LOG_LEVEL: 'info', npm_config_update_notifier: 'false' }
  delete env.REDIS_URL
  const npm = spawn('npm', ['start', '--', '--private-redis'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  npm.stdout?.on('data', (d) => { out += d })
  npm.stderr?.on('data', (d) => { out += d })
  const pids: Record<string, number> = {}
  t.teardown(() => { for (const pid of Object.values(pids)) if (alive(pid)) process.kill(pid, 'SIGKILL') })
  t.teardown(() => { if (!t.passing()) t.comment(out.slice(-4000)) })
  await until(() => {
    for (const name of PROCESSES) {
      const m = new RegExp(`\\[suite\\] ${name} started \\(pid (\\d+)\\)`).exec(out)
      if (m) pids[name] = Number(m[1])
    }
    const redis = /private redis-server on \S+ \(pid (\d+)/.exec(out)
    if (redis) pids.redis = Number(redis[1])
    return PROCESSES.every((name) => new RegExp(`\\[${name}\\] .*Server listening`).test(out))
  }, 180000, 'every process listening')
  pids.supervisor = parentOf(pids.gateway)
  const redisUrl = /\[suite\] REDIS_URL=(\S+)/.exec(out)?.[1] ?? ''
  return { npm, output: () => out, pids, redisUrl, dataDir }
}

t.setTimeout(600000)

t.test('SIGTERM to npm stops every process and the private Redis; the CLI finds the suite\'s Redis', async (t) => {
  const s = await startSuite(t)
  t.match(s.redisUrl, /^redis:\/\/127\.0\.0\.1:\d+$/, `prints the REDIS_URL it uses (${s.redisUrl})`)
  t.ok(s.pids.redis, 'started a private Redis')
  t.match(readFileSync(join(s.dataDir, 'suite.env'), 'utf8'), `REDIS_URL=${s.redisUrl}\n`, 'and records it')
  t.notMatch(s.output(), /Unhandled error event|Stream isn't writeable/, 'no Redis error stack at start')

  const env: Record<string, string | undefined> = { ...process.env, USPL_DATA_DIR: s.dataDir, REDIS_URL: undefined }
  const cli = spawnSync(process.execPath, [join(ROOT, 'scripts', 'run.mjs'), 'shared/cli/src/cli.ts', 'create-api-key', '--name', 'start-test', '--json'], { cwd: ROOT, env, encoding: 'utf8' })
  t.equal(cli.status, 0, `npm run cli reaches the suite's Redis with REDIS_URL unset: ${cli.stderr}`)
  t.match(JSON.parse(cli.stdout), { key: /^uspl_/ })

  // the README's workspace API example: seed, a personal key for the demo member, then the API as curl calls it
  const run = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [join(ROOT, 'scripts', 'run.mjs'), 'shared/cli/src/cli.ts', ...args], { cwd: ROOT, env, encoding: 'utf8' })
  t.equal(run('seed').status, 0, 'npm run cli -- seed')
  const personal = run('create-api-key', '--name', 'ci', '--user', 'member@demo.test', '--json')
  t.equal(personal.status, 0, `create-api-key --user: ${String(personal.stderr)}`)
  const apiUrl = /\[api\] .*Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(s.output())?.[1]
  t.ok(apiUrl, `the api service listens (${apiUrl})`)
  const res = await fetch(`${apiUrl}/v1/workspaces`, { headers: { authorization: `Bearer ${JSON.parse(String(personal.stdout)).key as string}` } })
  t.equal(res.status, 200, 'GET /v1/workspaces with the personal key')
  const body = await res.json() as { items: Array<{ role: string }> }
  t.ok(body.items.length > 0 && body.items.every((w) => w.role === 'member'), `the member's workspaces, each with the member's role: ${JSON.stringify(body.items)}`)

  process.kill(s.npm.pid!, 'SIGTERM')
  await until(() => Object.values(s.pids).every((pid) => !alive(pid)), 30000, 'every process gone')
  t.pass(`gone: ${Object.keys(s.pids).join(', ')}`)
  t.notOk(existsSync(join(s.dataDir, 'suite.env')), 'the record is removed')
})

t.test('npm killed outright: the supervisor notices and stops everything', async (t) => {
  const s = await startSuite(t)
  process.kill(s.npm.pid!, 'SIGKILL')
  await until(() => Object.values(s.pids).every((pid) => !alive(pid)), 30000, 'every process gone')
  t.pass(`gone: ${Object.keys(s.pids).join(', ')}`)
  t.match(s.output(), /parent process \(pid \d+\) is gone; stopping the suite/, 'it said why')
})

t.test('a Redis that is not there costs the CLI one line', async (t) => {
  const env = { ...process.env, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, USPL_DATA_DIR: mkdtempSync(join(tmpdir(), 'uspl-start-')) }
  t.teardown(() => rmSync(env.USPL_DATA_DIR, { recursive: true, force: true }))
  const cli = spawnSync(process.execPath, [join(ROOT, 'scripts', 'run.mjs'), 'shared/cli/src/cli.ts', 'list-users'], { cwd: ROOT, env, encoding: 'utf8' })
  t.equal(cli.status, 1, 'exits 1')
  const lines = cli.stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line: ${cli.stderr.slice(0, 300)}`)
  t.match(lines[0], /Redis not ready after \d+ ms \(connect ECONNREFUSED/, 'naming the cause')
})
