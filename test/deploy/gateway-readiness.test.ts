// The gateway is ready only when it can verify tokens: its readiness fetches the issuer's JWKS. A wrong
// JWKS_URL (the compose and k8s regression of issue 10: the default pointed at localhost inside the
// gateway's container) keeps it out of the load balancer instead of answering every MCP call 503.
import t from 'tap'
import Fastify from 'fastify'
import { testRedis, testEnv, servedJwks, freePort, listen, until } from '@uspl/testing'
import { build } from '@uspl/gateway'
import { loadConfig } from '@uspl/gateway/config'

async function gatewayWith (t: Parameters<typeof testRedis>[0], jwksUrl: string) {
  const r = await testRedis(t)
  const app = await build(loadConfig(testEnv(r, { JWKS_URL: jwksUrl, JWKS_CACHE_TTL_MS: '60000', JWKS_FETCH_TIMEOUT_MS: '1000' })), { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('regression: a JWKS_URL nothing answers on keeps the gateway not ready, naming the URL', async (t) => {
  const url = `http://127.0.0.1:${await freePort()}/.well-known/jwks.json`
  const app = await gatewayWith(t, url)
  const res = await app.inject('/health/ready')
  t.equal(res.statusCode, 503)
  t.match(res.json().reasons.jwks, `the issuer's JWKS cannot be fetched from ${url}`)
  t.equal((await app.inject('/health/live')).statusCode, 200, 'still live: the probe restarts nothing')
})

t.test('a JWKS without keys, or an error status, is not ready either', async (t) => {
  const app404 = Fastify()
  app404.get('/.well-known/jwks.json', async (_req, reply) => reply.code(404).send({}))
  app404.get('/empty', async () => ({ keys: [] }))
  const base = await listen(t, app404)
  t.match((await (await gatewayWith(t, `${base}/.well-known/jwks.json`)).inject('/health/ready')).json().reasons.jwks, /HTTP 404/)
  t.match((await (await gatewayWith(t, `${base}/empty`)).inject('/health/ready')).json().reasons.jwks, /no keys/)
})

t.test('ready once the JWKS is fetched, and probes do not fetch it every time', async (t) => {
  let hits = 0
  const issuer = Fastify()
  const keys = await (await fetch(await servedJwks(t))).json()
  issuer.get('/.well-known/jwks.json', async () => { hits++; return keys })
  const app = await gatewayWith(t, `${await listen(t, issuer)}/.well-known/jwks.json`)
  await until(async () => (await app.inject('/health/ready')).statusCode === 200, 10000, 'ready')
  const before = hits
  const probes = await Promise.all([app.inject('/health/ready'), app.inject('/health/ready'), app.inject('/health/ready')])
  t.same(probes.map((p) => p.statusCode), [200, 200, 200])
  t.ok(before >= 1, 'fetched the JWKS to become ready')
  t.equal(hits, before, 'three more probes, no more fetches')
})
