/**
 * Replica liveness (issue 10): a gateway replica killed with SIGKILL stops holding its grants' session
 * slots once its heartbeat expires, its entries are swept by a live replica, its session ids still answer
 * 404 elsewhere, and a replica restarting with the same REPLICA_ID deletes what its previous process left.
 * The killed replicas are real gateway processes (services/gateway/src/server.ts) on the test's Redis.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { freePort, testEnv, testRedis, until, type TestRedis } from '@uspl/testing'
import { keys } from '@uspl/core'
import { startIssuer, startGateway, grantFor, claimsFor, rawSession, rawCall, initializeBody, mcpHeaders, type Issuer, type Endpoint } from './helpers.ts'
import { loadConfig } from '../src/config.ts'

const root = join(import.meta.dirname, '..')

interface Child extends Endpoint {
  url: string
  proc: ChildProcess
}

/** A gateway in its own process; resolves once it listens and reports ready. */
async function spawnGateway (t: { teardown: (fn: () => unknown) => void }, r: TestRedis, issuer: Issuer, env: Record<string, string>): Promise<Child> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...testEnv(r, { LOG_LEVEL: 'info', ISSUER_URL: issuer.url, GATEWAY_RESOURCE_URL: `${url}/mcp`, PORT: String(port), ...env }) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(async () => { if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGKILL'); await once(proc, 'exit') } })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    proc.stdout?.on('data', (d) => { out += d; if (out.includes('Server listening')) resolve() })
    proc.once('exit', (code) => reject(new Error(`the gateway exited with ${code} before listening: ${out.slice(-500)}`)))
  })
  await until(async () => (await fetch(`${url}/health/ready`)).status === 200, 15000, 'the child gateway ready')
  return { url, mcpUrl: `${url}/mcp`, proc }
}

async function kill (child: Child): Promise<void> {
  child.proc.kill('SIGKILL')
  await once(child.proc, 'exit')
}

async function initialize (gw: Endpoint, token: string): Promise<number> {
  const res = await fetch(gw.mcpUrl, { method: 'POST', headers: mcpHeaders(token), body: initializeBody() })
  await res.text()
  return res.status
}

// fast heartbeats so the test waits well under a second for an expiry
const FAST = { REPLICA_HEARTBEAT_INTERVAL_MS: '100', REPLICA_HEARTBEAT_TTL_MS: '600', MAX_SESSIONS_PER_GRANT: '2' }

t.test('a SIGKILLed replica: its sessions stop counting against the cap once its heartbeat expires, and are swept', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const b = await startGateway(t, r, issuer, { ...FAST, REPLICA_ID: 'b' })
  const a = await spawnGateway(t, r, issuer, { ...FAST, REPLICA_ID: 'a' })
  const grant = await grantFor(r, 'usr_a', 'cli_a')
  const other = await grantFor(r, 'usr_b', 'cli_b')
  const token = (gw: Endpoint): string => issuer.sign(claimsFor(issuer, gw, grant))
  const onA = [await rawSession(a, token(a)), await rawSession(a, token(a))]
  const otherToken = issuer.sign(claimsFor(issuer, b, other))
  const otherSession = await rawSession(b, otherToken)
  t.equal(await initialize(b, token(b)), 429, 'the grant holds its cap on A: B refuses a third session')
  t.same((await r.redis.smembers(keys.replicaSessions('a'))).sort(), [...onA].sort(), "A's set lists its sessions")

  await kill(a)
  // a killed process cannot announce its death: its heartbeat key expiring is the event
  await until(async () => await r.redis.exists(keys.replicaAlive('a')) === 0, 10000, "A's heartbeat to expire")
  t.equal(await initialize(b, token(b)), 200, "A's heartbeat expired: B opens a session for the grant")
  for (const sid of onA) t.equal((await rawCall(b, token(b), sid, 'tools/list')).status, 404, 'a session of the dead replica answers 404 on B')

  await until(async () => await r.redis.sismember(keys.replicas(), 'a') === 0, 10000, "B's sweep of A")
  t.equal(await r.redis.exists(keys.replicaSessions('a')), 0, "A's set is gone")
  for (const sid of onA) {
    t.equal(await r.redis.exists(keys.mcpSession(sid)), 0, 'its entries are deleted')
    t.equal(await r.redis.sismember(keys.grantSessions(grant.id), sid), 0, 'and gone from the grant\'s set')
  }
  t.equal(await r.redis.sismember(keys.replicas(), 'b'), 1, 'B is still listed')
  t.equal((await rawCall(b, otherToken, otherSession, 'tools/list')).status, 200, 'the other client\'s session on B never noticed')
})

t.test('a replica restarting with the same REPLICA_ID deletes the entries its killed process left', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  // a heartbeat that would outlive the test: only the restart's claim can free the slot
  const env = { REPLICA_ID: 'solo', MAX_SESSIONS_PER_GRANT: '1', REPLICA_HEARTBEAT_INTERVAL_MS: '1000', REPLICA_HEARTBEAT_TTL_MS: '120000' }
  const grant = await grantFor(r, 'usr_a', 'cli_a')
  const first = await spawnGateway(t, r, issuer, env)
  const old = await rawSession(first, issuer.sign(claimsFor(issuer, first, grant)))
  t.equal(await initialize(first, issuer.sign(claimsFor(issuer, first, grant))), 429, 'the cap is held')
  await kill(first)
  t.equal(await r.redis.exists(keys.replicaAlive('solo')), 1, 'the killed process\'s heartbeat has not expired')

  const second = await spawnGateway(t, r, issuer, env)
  t.equal(await r.redis.exists(keys.mcpSession(old)), 0, 'the old entry is deleted')
  t.equal(await r.redis.scard(keys.grantSessions(grant.id)), 0, 'the grant holds no session')
  const token = issuer.sign(claimsFor(issuer, second, grant))
  t.equal((await rawCall(second, token, old, 'tools/list')).status, 404, 'the old session answers 404')
  t.equal(await initialize(second, token), 200, 'and the grant may open a new one')
  await kill(second)
})

t.test('a replica whose heartbeat lapsed indexes the sessions it still holds again', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer, { ...FAST, REPLICA_ID: 'stalled' })
  const grant = await grantFor(r, 'usr_a', 'cli_a')
  const sid = await rawSession(gw, issuer.sign(claimsFor(issuer, gw, grant)))
  // what another replica's sweep does to a replica whose heartbeat lapsed (Redis away, a stalled process)
  await r.redis.multi().del(keys.replicaAlive('stalled'), keys.mcpSession(sid), keys.replicaSessions('stalled')).srem(keys.grantSessions(grant.id), sid).exec()
  const [count] = await once(gw.app.replicaHeartbeat, 'lapsed') as [number]
  t.equal(count, 1, 'one session indexed again')
  t.match(await r.redis.hgetall(keys.mcpSession(sid)), { grant: grant.id, replica: 'stalled', url: gw.url }, 'its entry is back')
  t.equal(await r.redis.sismember(keys.grantSessions(grant.id), sid), 1)
  t.equal(await r.redis.sismember(keys.replicaSessions('stalled'), sid), 1)
})

t.test('a graceful close removes the heartbeat and the replica from the list', async (t) => {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, r, issuer, { ...FAST, REPLICA_ID: 'leaving' })
  const grant = await grantFor(r, 'usr_a', 'cli_a')
  await rawSession(gw, issuer.sign(claimsFor(issuer, gw, grant)))
  t.equal(await r.redis.sismember(keys.replicas(), 'leaving'), 1)
  await gw.app.close()
  t.equal(await r.redis.exists(keys.replicaAlive('leaving')), 0, 'no heartbeat')
  t.equal(await r.redis.sismember(keys.replicas(), 'leaving'), 0, 'not listed')
  t.equal(await r.redis.exists(keys.replicaSessions('leaving')), 0, 'no entries left')
})

t.test('a heartbeat TTL under twice its interval is refused at start', async (t) => {
  t.throws(() => loadConfig(testEnv({ url: 'redis://127.0.0.1:6379', prefix: 'test:x:' }, { REPLICA_HEARTBEAT_INTERVAL_MS: '2000', REPLICA_HEARTBEAT_TTL_MS: '3000' })),
    /invalid configuration: REPLICA_HEARTBEAT_TTL_MS must be at least twice REPLICA_HEARTBEAT_INTERVAL_MS/)
})
