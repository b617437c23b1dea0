// docker-compose.yml, run for real (issue 10): every service it builds runs from the production folder with
// the command and the EXACT environment the file gives it, each in its own network namespace, where the
// compose names (redis, token, gateway…) resolve as on a compose network, and Redis (its own namespace) is
// reachable only as `redis`. The one change: compose publishes ports on the host's localhost, which here
// is the service's namespace address, so the public URLs (`http://localhost:<published>`) are rewritten to
// it. The MCP SDK client then runs the OAuth flow and a tool call through them, from the host.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { NetTopology } from '@uspl/testing'
import { productionFolder, programOf, capture, waitHealthy, seed, oauthAndToolCall, ROOT } from './helpers.ts'

type Obj = Record<string, any>

/** What the shell gives `docker compose up` (the README's instructions), for compose's `${VAR…}` interpolation. */
const SHELL: Record<string, string> = { SIGNING_KEYS_KEK: randomBytes(32).toString('base64') }

/** Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?error}` (an unset VAR with `:?` fails, as compose does). */
function interpolate (value: string): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_m, name: string, op: string | undefined, arg: string | undefined) => {
    const v = SHELL[name]
    if (v !== undefined && v !== '') return v
    if (op === '?') throw new Error(`compose would refuse to start: ${name}: ${arg ?? 'required'}`)
    return op === '-' ? (arg ?? '') : ''
  })
}

/** The ENV of the Dockerfile's runtime stage: every container starts with it, under compose's environment. */
function imageEnv (): Record<string, string> {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
  const stage = dockerfile.slice(dockerfile.search(/^FROM .* AS prod$/m))
  const out: Record<string, string> = {}
  for (const m of stage.matchAll(/^ENV ((?:.*\\\n)*.*)$/gm)) {
    for (const pair of m[1].replace(/\\\n/g, ' ').trim().split(/\s+/)) out[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1)
  }
  return out
}

function envOf (service: Obj): Record<string, string> {
  const env = service.environment ?? {}
  const pairs: Array<[string, string]> = Array.isArray(env)
    ? env.map((e: string) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])
    : Object.entries(env).map(([k, v]) => [k, String(v)])
  return { ...imageEnv(), ...Object.fromEntries(pairs.map(([k, v]) => [k, interpolate(v)])) }
}

// several Node processes starting at once on a shared 2-core machine: well past tap's default 120 s
t.setTimeout(600000)

t.test('the compose services, with compose\'s environment, each in its own namespace, carry the OAuth flow and a tool call', async (t) => {
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Obj
  const built = Object.entries<Obj>(compose.services).filter(([, s]) => s.build !== undefined)
  t.ok(built.length >= 5, `services built from the Dockerfile: ${built.map(([n]) => n).join(', ')}`)
  t.ok(compose.services.redis, 'a redis service')
  t.equal(imageEnv().NODE_ENV, 'production', 'the services run with the image\'s environment (NODE_ENV=production) under compose\'s')
  const dir = await productionFolder(t)
  const topo = await NetTopology.create(t, ['redis', ...built.map(([n]) => n)])

  // the host's published ports: localhost:<published> reaches <service>:<target>
  const published = new Map<string, string>()
  for (const [name, service] of built) {
    for (const spec of service.ports ?? []) {
      const [hostPort, target] = String(spec).split(':').slice(-2)
      published.set(`localhost:${hostPort}`, `${topo.host(name).ip}:${target}`)
    }
  }
  const fromHost = (value: string): string => value.replace(/localhost:\d+/g, (m) => published.get(m) ?? m)

  const redisDir = mkdtempSync(join(tmpdir(), 'uspl-compose-redis-'))
  t.teardown(() => rmSync(redisDir, { recursive: true, force: true }))
  await topo.redis('redis', redisDir)

  const envs = new Map<string, Record<string, string>>()
  for (const [name, service] of built) {
    const env = envOf(service)
    const publicUrls = Object.fromEntries(['ISSUER_URL', 'GATEWAY_RESOURCE_URL', 'REGISTRATION_URL', 'CONNECTIONS_URL'].filter((k) => env[k]).map((k) => [k, fromHost(env[k])]))
    const full = { PATH: process.env.PATH ?? '', ...env, ...publicUrls }
    envs.set(name, full)
    t.equal(env.REDIS_URL, 'redis://redis:6379', `${name}: Redis by its compose name`)
    const { program, args } = programOf(service.command)
    capture(topo.spawn(name, program, args, { cwd: dir, env: full }), name, t)
  }
  t.match(envs.get('gateway')?.JWKS_URL, /^http:\/\/token:\d+\//, 'the gateway fetches the JWKS from the token service by name')
  for (const [name] of built) await waitHealthy(`http://${topo.host(name).ip}:${envs.get(name)!.PORT}`, name)
  t.pass('every service reports ready (the gateway only once it fetched the JWKS through `token`)')

  const gateway = envs.get('gateway')!
  const { person } = await seed(t, `redis://${topo.host('redis').ip}:6379`, gateway.REDIS_PREFIX)
  await oauthAndToolCall(t, gateway.GATEWAY_RESOURCE_URL, gateway.ISSUER_URL, person)
})
