// One REDIS_URL names any deployment: these connect through a real Sentinel and a real three-node
// cluster (redis-server processes of this test's own), run the revocation module's multi-key script on
// them, and bring a service to ready on the Sentinel URL and on a TLS (rediss://) URL.
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once, EventEmitter } from 'node:events'
import { privateRedis, until, testPrefix, freePort, PrivateRedis } from '@uspl/testing'
import { createRedis, closeRedis, waitReady, type RedisClient } from '../src/index.ts'
import { GrantStore, Revoker, Denylist, RevocationFeed, nowSeconds, keys, type RevocationEvent } from '@uspl/core'
import { build as buildRegistration } from '@uspl/registration'
import { loadConfig as loadRegistration } from '@uspl/registration/config'

async function revokeOn (t: Parameters<typeof privateRedis>[0], url: string, redis: RedisClient, prefix: string): Promise<void> {
  const applied = new EventEmitter()
  const feed = new RevocationFeed({ url, prefix, redis, onEvent: (event) => applied.emit('event', event) })
  t.teardown(() => feed.close())
  await feed.start()
  await feed.waitReady()
  const grant = await new GrantStore(redis, prefix).ensure({ userId: 'usr_1', clientId: 'cli_1', scope: 'mcp:tools', resource: 'https://mcp.example/mcp', authTime: nowSeconds(), ttlS: 600 })
  const delivered = once(applied, 'event') as Promise<[RevocationEvent]>
  const result = await new Revoker({ redis, prefix, accessTokenTtlS: 900 }).revokeGrant(grant.id, { path: 'cli', actor: { type: 'system', id: 'test' } })
  t.equal(result.status, 'revoked', 'the revocation script ran')
  const [event] = await delivered
  t.equal(event.id, result.eventId, 'and its event reached the subscriber')
  t.equal(await new Denylist(redis).check({ grantId: grant.id, clientId: 'cli_1', jti: 'j', iat: nowSeconds() }), 'grant_revoked', 'the denylist answers in one MGET')
}

t.test('redis+sentinel:// finds the master through a Sentinel', async (t) => {
  const master = await privateRedis(t)
  const sentinel = await privateRedis(t, { sentinel: { masterPort: master.port, name: 'mymaster' } })
  const url = `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster`
  const prefix = testPrefix()
  const redis = createRedis({ url, prefix, offlineQueue: true })
  t.teardown(() => closeRedis(redis))
  await waitReady(redis)
  await redis.set('probe', 'via-sentinel')
  const direct = createRedis({ url: master.url, prefix: '', noPrefix: true, offlineQueue: true })
  t.teardown(() => closeRedis(direct))
  t.equal(await direct.get(`${prefix}probe`), 'via-sentinel', 'the write landed on the master, under the prefix')
  await revokeOn(t, url, redis, prefix)

  const app = await buildRegistration(loadRegistration({ REDIS_URL: url, REDIS_PREFIX: prefix, LOG_LEVEL: 'silent' }), { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  await until(async () => (await app.inject('/health/ready')).statusCode === 200, 10000, 'ready on the Sentinel URL')
  t.pass('a service is ready on the Sentinel URL')
})

t.test('redis+cluster:// runs the multi-key scripts on one slot through a hash-tagged prefix', async (t) => {
  const nodes: PrivateRedis[] = []
  for (let i = 0; i < 3; i++) {
    nodes.push(await privateRedis(t, { args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }))
  }
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' })
  const probe = createRedis({ url: nodes[0].url, prefix: '', noPrefix: true, offlineQueue: true })
  t.teardown(() => closeRedis(probe))
  // the cluster agrees on its slots asynchronously; nothing announces it but CLUSTER INFO
  await until(async () => /cluster_state:ok/.test(await probe.cluster('INFO') as string), 15000, 'cluster state ok')

  const url = `redis+cluster://127.0.0.1:${nodes[0].port},127.0.0.1:${nodes[1].port}`
  t.throws(() => createRedis({ url, prefix: 'uspl:' }), /hash tag/, 'a prefix without a hash tag is refused in cluster mode')
  const prefix = `{${testPrefix().replace(/:$/, '')}}:`
  const redis = createRedis({ url, prefix, offlineQueue: true })
  t.teardown(() => closeRedis(redis))
  await waitReady(redis, 10000)
  await revokeOn(t, url, redis, prefix)
  t.equal(await redis.xlen(keys.revocationStream()), 1, 'the event is in the stream')
})

t.test('rediss:// speaks TLS; a private CA is trusted the standard Node way (NODE_EXTRA_CA_CERTS)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'uspl-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')]
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  const port = await freePort()
  const server = new PrivateRedis(port, { args: ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no'] })
  await server.start()
  t.teardown(() => server.cleanup())
  const url = `rediss://127.0.0.1:${port}`

  // the registration service's real entry point, as an operator would run it
  const httpPort = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: join(import.meta.dirname, '..', '..', '..', 'services', 'registration'),
    env: { PATH: process.env.PATH ?? '', REDIS_URL: url, REDIS_PREFIX: testPrefix(), PORT: String(httpPort), LOG_LEVEL: 'warn', NODE_EXTRA_CA_CERTS: cert },
    stdio: 'ignore'
  })
  t.teardown(() => { child.kill('SIGKILL') })
  await until(async () => {
    try {
      return (await fetch(`http://127.0.0.1:${httpPort}/health/ready`)).status === 200
    } catch {
      return false
    }
  }, 20000, 'ready over TLS')
  t.pass('the service is ready on a rediss:// URL')

  const untrusted = createRedis({ url, prefix: testPrefix(), offlineQueue: true })
  const refused = once(untrusted, 'error') as Promise<[Error]>
  const [err] = await refused
  untrusted.disconnect()
  t.match(err.message, /self.signed|certificate/i, 'without the CA, the certificate is refused: the connection is verified')
})
