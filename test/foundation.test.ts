// The foundation every service shares: health endpoints, Redis loss and recovery without a restart,
// config refused with one line naming the variable, graceful shutdown on SIGTERM, redacted logs.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import pino from 'pino'
import { testRedis, testEnv, privateRedis, until, freePort, TEST_REDIS_URL, servedJwks } from '@uspl/testing'
import { loggerOptions } from '@uspl/logger'
import * as registration from '@uspl/registration'
import * as token from '@uspl/token'
import * as gateway from '@uspl/gateway'
import * as connections from '@uspl/connections'
import * as api from '@uspl/api'
import { loadConfig as loadRegistration } from '@uspl/registration/config'
import { loadConfig as loadToken } from '@uspl/token/config'
import { loadConfig as loadGateway } from '@uspl/gateway/config'
import { loadConfig as loadConnections } from '@uspl/connections/config'
import { loadConfig as loadApi } from '@uspl/api/config'

const services = [
  { name: 'registration', build: registration.build, load: loadRegistration },
  { name: 'token', build: token.build, load: loadToken },
  { name: 'gateway', build: gateway.build, load: loadGateway },
  { name: 'connections', build: connections.build, load: loadConnections },
  { name: 'api', build: api.build, load: loadApi }
] as const

const root = join(import.meta.dirname, '..')

/** The gateway is ready only once it has fetched the issuer's JWKS: give it one to fetch. */
async function readinessEnv (t: Parameters<typeof servedJwks>[0], name: string): Promise<Record<string, string>> {
  return name === 'gateway' ? { JWKS_URL: await servedJwks(t) } : {}
}

for (const svc of services) {
  t.test(`${svc.name}: live and ready against a real Redis`, async (t) => {
    const r = await testRedis(t)
    const app = await svc.build(svc.load(testEnv(r, await readinessEnv(t, svc.name))) as never, { logger: false })
    t.teardown(() => app.close())
    await app.ready()
    const live = await app.inject('/health/live')
    t.equal(live.statusCode, 200)
    t.same(live.json(), { status: 'ok' })
    await until(async () => (await app.inject('/health/ready')).statusCode === 200, 10000, `${svc.name} ready`)
    t.ok(live.headers['x-request-id'], 'responses carry a request id')
  })

  t.test(`${svc.name}: not ready while Redis is away, ready again by itself`, async (t) => {
    const redis = await privateRedis(t)
    const app = await svc.build(svc.load(testEnv({ url: redis.url, prefix: 'test:foundation:' }, await readinessEnv(t, svc.name))) as never, { logger: false })
    t.teardown(() => app.close())
    await app.ready()
    await until(async () => (await app.inject('/health/ready')).statusCode === 200, 10000, 'ready')
    await redis.stop()
    await until(async () => (await app.inject('/health/ready')).statusCode === 503, 5000, 'not ready')
    const down = await app.inject('/health/ready')
    t.equal(down.json().status, 'not_ready')
    t.ok(down.json().reasons.redis, 'names Redis as the reason')
    t.equal((await app.inject('/health/live')).statusCode, 200, 'still live')
    await redis.start()
    await until(async () => (await app.inject('/health/ready')).statusCode === 200, 10000, 'ready again')
    t.pass('recovered without a restart')
  })
}

function runServer (service: string, env: Record<string, string>): ReturnType<typeof spawn> {
  return spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: join(root, 'services', service),
    env: { PATH: process.env.PATH ?? '', REDIS_PREFIX: 'test:server:', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
}

t.test('bad configuration stops the process with one line naming the variable', async (t) => {
  for (const [name, value, service] of [['PORT', 'abc', 'token'], ['REDIS_URL', 'redis//nope', 'gateway'], ['LOG_LEVEL', 'chatty', 'registration'], ['ISSUER_URL', 'not a url', 'token']] as const) {
    const child = runServer(service, { [name]: value, REDIS_URL: name === 'REDIS_URL' ? value : TEST_REDIS_URL })
    let stderr = ''
    child.stderr?.on('data', (d) => { stderr += d })
    const [code] = await once(child, 'exit')
    t.not(code, 0, `${name}=${value} exits non-zero`)
    const lines = stderr.trim().split('\n')
    t.equal(lines.length, 1, 'one line')
    t.match(lines[0], new RegExp(`^${service}: invalid configuration: ${name} `), lines[0])
  }
})

t.test('the server listens, then SIGTERM finishes in-flight work and exits 0', async (t) => {
  const port = await freePort()
  const r = await testRedis(t)
  const child = runServer('registration', { PORT: String(port), REDIS_URL: r.url, REDIS_PREFIX: r.prefix })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d) => { out += d; if (out.includes('Server listening')) resolve() })
    child.once('exit', (code) => reject(new Error(`the server exited with ${code} before listening`)))
  })
  const res = await fetch(`http://127.0.0.1:${port}/health/live`)
  t.equal(res.status, 200)
  t.equal((await fetch(`http://127.0.0.1:${port}/nowhere`)).status, 404)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { service: string, reqId?: string })
  t.ok(lines.every((l) => l.service === 'registration'), 'JSON lines marked with the service')
  t.ok(lines.some((l) => l.reqId), 'request lines carry a request id')
})

t.test('logs redact secrets', async (t) => {
  const chunks: string[] = []
  const sink = new Writable({ write (c, _e, cb) { chunks.push(c.toString()); cb() } })
  const log = pino(loggerOptions('token', { LOG_LEVEL: 'info', LOG_PRETTY: false }), sink)
  log.info({ req: { method: 'GET', url: '/cb?code=SECRETCODE&state=s1&x=1', headers: { authorization: 'Bearer SECRETTOKEN', cookie: 'uspl_session=SECRETCOOKIE' } } }, 'request')
  log.info({ body: { password: 'SECRETPASS', refresh_token: 'SECRETRT', code: 'SECRETBODYCODE' } }, 'body')
  log.error({ err: Object.assign(new Error('listen'), { code: 'EADDRINUSE' }) }, 'error codes stay readable')
  const text = chunks.join('')
  for (const secret of ['SECRETCODE', 'SECRETTOKEN', 'SECRETCOOKIE', 'SECRETPASS', 'SECRETRT', 'SECRETBODYCODE']) t.notMatch(text, secret, `${secret} redacted`)
  t.match(text, 'x=1', 'harmless query parameters stay')
  t.match(text, 'EADDRINUSE', 'error codes are not secrets')
})
