// The artifact the image holds (issue 10): the production folder, assembled by scripts/assemble-prod.mjs
// exactly as the Dockerfile does, holds compiled JavaScript and production dependencies only, and every
// service (and the follow-up worker) starts from it with the command the image runs, becomes ready against
// a real Redis, and carries a real authenticated flow. Its HEALTHCHECK script answers for a service.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { testRedis, freePort, until } from '@uspl/testing'
import { productionFolder, capture, waitHealthy, seed, oauthAndToolCall, ROOT } from './helpers.ts'

const SERVICES = readdirSync(join(ROOT, 'services')).filter((s) => existsSync(join(ROOT, 'services', s, 'src', 'server.ts'))).sort()
/** What must never be in a production folder, by pnpm's virtual-store directory name. */
const DEV_TOOLS = /^(tap|typescript|tsx|playwright-core|@tapjs\+[^@]+|@types\+node|@uspl\+testing)@/

function walk (dir: string, visit: (path: string) => void): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) walk(path, visit)
    else visit(path)
  }
}

/** The nice value of each thread of a process (field 19 of /proc/<pid>/task/<tid>/stat, after the command name). */
function threadNices (pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
  })
}

// several Node processes starting at once on a shared 2-core machine: well past tap's default 120 s
t.setTimeout(600000)

t.test('the production folder holds compiled JavaScript and production dependencies only', async (t) => {
  const dir = await productionFolder(t)
  t.ok(existsSync(join(dir, 'healthcheck.mjs')), 'the HEALTHCHECK script')
  t.same(readdirSync(join(dir, 'services')).sort(), SERVICES, 'one folder per service')
  for (const name of SERVICES) {
    const svc = join(dir, 'services', name)
    t.ok(existsSync(join(svc, 'dist', 'server.js')), `${name}: dist/server.js`)
    t.notOk(existsSync(join(svc, 'src')), `${name}: no sources`)
    const store = readdirSync(join(svc, 'node_modules', '.pnpm'))
    t.same(store.filter((d) => DEV_TOOLS.test(d)), [], `${name}: no tap, typescript, tsx, playwright-core or @uspl/testing`)
    const pkg = JSON.parse(readFileSync(join(ROOT, 'services', name, 'package.json'), 'utf8'))
    for (const dev of Object.keys(pkg.devDependencies ?? {})) {
      t.notOk(existsSync(join(svc, 'node_modules', dev)), `${name}: its devDependency ${dev} is not installed`)
    }
    let ts = 0
    walk(join(svc, 'node_modules', '.pnpm'), (path) => {
      if (/node_modules\/@uspl\/[^/]+\//.test(path) && /\.ts$/.test(path) && !path.endsWith('.d.ts')) ts++
    })
    t.equal(ts, 0, `${name}: the workspace packages it uses ship no TypeScript sources`)
  }
})

t.test('the operator CLI runs from it as the image runs it, on production dependencies only', async (t) => {
  const dir = await productionFolder(t)
  const cli = join(dir, 'cli')
  t.ok(existsSync(join(cli, 'dist', 'cli.js')), 'cli/dist/cli.js')
  t.notOk(existsSync(join(cli, 'src')), 'no sources')
  t.same(readdirSync(join(cli, 'node_modules', '.pnpm')).filter((d) => DEV_TOOLS.test(d)), [], 'no tap, typescript, tsx, playwright-core or @uspl/testing')
  const r = await testRedis(t)
  const env = { PATH: process.env.PATH ?? '', NODE_ENV: 'production', SIGNING_KEYS_KEK: randomBytes(32).toString('base64'), REDIS_URL: r.url, REDIS_PREFIX: r.prefix }
  const created = spawnSync(process.execPath, ['--conditions=compiled', 'cli/dist/cli.js', 'create-api-key', '--name', 'prod-folder', '--json'], { cwd: dir, env, encoding: 'utf8' })
  t.equal(created.status, 0, `create-api-key exits 0: ${created.stderr}`)
  t.match(JSON.parse(created.stdout), { kind: 'operator', key: /^uspl_/ }, 'and prints the key once')
  const listed = spawnSync(process.execPath, ['--conditions=compiled', 'cli/dist/cli.js', 'list-api-keys'], { cwd: dir, env, encoding: 'utf8' })
  t.equal(listed.status, 0, listed.stderr)
  t.match(listed.stdout, /\toperator\tprod-folder\t/, 'the key is listed')
})

t.test('every service and the worker start from it with the image\'s command, ready on a real Redis; a real flow runs', async (t) => {
  const dir = await productionFolder(t)
  const r = await testRedis(t)
  const ports: Record<string, number> = {}
  for (const name of [...SERVICES, 'connections-worker']) ports[name] = await freePort()
  const origin = (name: string): string => `http://127.0.0.1:${ports[name]}`
  const env = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    // production refuses unsealed signing keys in Redis (as the image, compose and k8s give it one)
    SIGNING_KEYS_KEK: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    REDIS_URL: r.url,
    REDIS_PREFIX: r.prefix,
    ISSUER_URL: origin('token'),
    GATEWAY_RESOURCE_URL: `${origin('gateway')}/mcp`,
    REGISTRATION_URL: origin('registration'),
    CONNECTIONS_URL: origin('connections')
  }
  const entries = [
    ...SERVICES.map((name) => ({ name, entry: `services/${name}/dist/server.js`, extra: name === 'connections' ? { WORKER_ENABLED: 'false' } : {} })),
    { name: 'connections-worker', entry: 'services/connections/dist/worker.js', extra: {} }
  ]
  const children = entries.map(({ name, entry, extra }) => {
    const child = spawn(process.execPath, ['--conditions=compiled', entry], { cwd: dir, env: { ...env, ...extra, PORT: String(ports[name]) }, stdio: ['ignore', 'pipe', 'pipe'] })
    capture(child, name, t)
    t.teardown(async () => { if (child.exitCode === null) { child.kill('SIGTERM'); await once(child, 'exit') } })
    return { name, child }
  })
  for (const { name } of children) await waitHealthy(origin(name), name)
  t.pass(`ready: ${children.map((c) => c.name).join(', ')}`)

  // the worker yields the CPU to the request path (WORKER_NICE, 10): every thread of it, the runtime's
  // own (garbage collector, compiler, I/O pool) included; the services keep the default priority
  for (const { name, child } of children) {
    const nices = threadNices(child.pid ?? 0)
    t.ok(nices.length > 1, `${name}: its threads are listed`)
    t.same([...new Set(nices)], [name === 'connections-worker' ? 10 : 0], `${name}: every thread at nice ${name === 'connections-worker' ? 10 : 0}`)
  }

  const hc = spawnSync(process.execPath, [join(dir, 'healthcheck.mjs')], { env: { PATH: env.PATH, PORT: String(ports.gateway) } })
  t.equal(hc.status, 0, 'the image\'s HEALTHCHECK passes for a ready service')
  const down = spawnSync(process.execPath, [join(dir, 'healthcheck.mjs')], { env: { PATH: env.PATH, PORT: String(await freePort()) } })
  t.equal(down.status, 1, 'and fails where nothing answers')

  const { person, operatorKey } = await seed(t, r.url, r.prefix)
  const { app } = await oauthAndToolCall(t, `${origin('gateway')}/mcp`, env.ISSUER_URL, person)

  // the API runs without the worker: the audit record of a revocation comes from the worker's own process
  const operator = { authorization: `Bearer ${operatorKey}` }
  const revoked = await fetch(`${origin('connections')}/v1/connections/${app.grantId}/revoke`, { method: 'POST', headers: { ...operator, 'content-type': 'application/json' }, body: JSON.stringify({ confirm: 'Deploy Client' }) })
  t.equal(revoked.status, 200, 'revoked through the connections API')
  const { event_id: eventId } = await revoked.json() as { event_id: string }
  await until(async () => {
    const audit = await (await fetch(`${origin('connections')}/v1/audit`, { headers: operator })).json() as { items: Array<{ event_id: string }> }
    return audit.items.some((i) => i.event_id === eventId)
  }, 20000, 'the audit record')
  t.pass('connections-worker wrote the audit record')

  for (const { name, child } of children) {
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    t.equal(code, 0, `${name}: SIGTERM exits 0`)
  }
})
