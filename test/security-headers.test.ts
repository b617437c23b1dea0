// Issue 12 item 7: one set of security headers on every service's responses (nosniff only on the token
// service before; Swagger UI could be framed). Pages keep their own CSP with frame-ancestors 'none'.
import t from 'tap'
import { testRedis, testEnv } from '@uspl/testing'
import * as registration from '@uspl/registration'
import * as token from '@uspl/token'
import * as gateway from '@uspl/gateway'
import * as connections from '@uspl/connections'
import { loadConfig as loadRegistration } from '@uspl/registration/config'
import { loadConfig as loadToken } from '@uspl/token/config'
import { loadConfig as loadGateway } from '@uspl/gateway/config'
import { loadConfig as loadConnections } from '@uspl/connections/config'

const services = [
  { name: 'registration', build: registration.build, load: loadRegistration, paths: ['/health/live', '/register/cli_nope', '/nowhere'] },
  { name: 'token', build: token.build, load: loadToken, paths: ['/.well-known/jwks.json', '/signin', '/authorize', '/nowhere'] },
  { name: 'gateway', build: gateway.build, load: loadGateway, paths: ['/.well-known/oauth-protected-resource/mcp', '/mcp', '/nowhere'] },
  { name: 'connections', build: connections.build, load: loadConnections, paths: ['/v1/connections', '/docs/json', '/docs/', '/docs/static/index.html', '/connections', '/nowhere'] }
] as const

for (const svc of services) {
  t.test(`${svc.name}: every response carries the security headers and cannot be framed`, async (t) => {
    const r = await testRedis(t)
    const app = await svc.build(svc.load(testEnv(r)) as never, { logger: false })
    t.teardown(() => app.close())
    for (const url of svc.paths) {
      const res = await app.inject({ url })
      const h = res.headers
      t.equal(h['x-content-type-options'], 'nosniff', `${url} (${res.statusCode}): nosniff`)
      t.equal(h['referrer-policy'], 'no-referrer', `${url}: no referrer`)
      t.equal(h['x-frame-options'], 'DENY', `${url}: X-Frame-Options`)
      t.match(h['content-security-policy'], /frame-ancestors 'none'/, `${url}: CSP frame-ancestors 'none'`)
      if (!String(h['content-type']).startsWith('text/html')) t.match(h['content-security-policy'], /^default-src 'none'/, `${url}: a non-page loads nothing`)
    }
  })
}
