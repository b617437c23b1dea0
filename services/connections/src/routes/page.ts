/**
 * GET /connections  the account page for the signed-in user (others are sent to sign in and back): Connected
 *                   Apps, then personal API keys.
 * GET /             sends browsers to the page.
 */
import type { FastifyInstance } from 'fastify'
import { randomBytes } from 'node:crypto'
import { principalOf } from '../auth.ts'
import { activeGrants, toConnections } from '../connections.ts'
import { connectionsPage } from '../views/connections-page.ts'
import { pageScript } from '../views/page-script.ts'
import { apiKeyInfo } from './api-keys.ts'
import type { Config } from '../config.ts'

export function pageSecurityHeaders (nonce: string, formOrigins: string[] = []): Record<string, string> {
  return {
    'content-security-policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "img-src https: data:",
      "connect-src 'self'",
      "base-uri 'none'",
      ["form-action 'self'", ...formOrigins].join(' '),
      "frame-ancestors 'none'"
    ].join('; '),
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    'cross-origin-opener-policy': 'same-origin'
  }
}

export default async function pageRoutes (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  // once, at start: bundled now when run from source, the build's bundle when compiled
  const script = await pageScript()
  app.get('/', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => reply.redirect('connections', 302))

  app.get('/connections', {
    config: { auth: 'user', signInRedirect: true },
    schema: { hide: true }
  }, async (request, reply) => {
    const who = principalOf(request)
    if (who.type !== 'user') throw new Error('unreachable: auth "user" admits users only')
    const [connections, apiKeys, user] = await Promise.all([
      activeGrants(app, { userId: who.userId }).then((grants) => toConnections(app, grants)),
      app.connectionsContext.apiKeys.list({ userId: who.userId }),
      app.connectionsContext.accounts.getUser(who.userId)
    ])
    const nonce = randomBytes(16).toString('base64')
    // sign-out is the token service's (it owns the session), and comes back here (then to sign-in)
    const logoutUrl = `${config.ISSUER_URL.replace(/\/+$/, '')}/logout`
    return reply
      .headers(pageSecurityHeaders(nonce, [new URL(config.ISSUER_URL).origin]))
      .type('text/html; charset=utf-8')
      .send(connectionsPage({ nonce, script, csrf: who.session.csrf, connections, apiKeys: apiKeys.map(apiKeyInfo), user: { email: user?.email ?? '', name: user?.name ?? '' }, logoutUrl, returnTo: `${config.CONNECTIONS_URL.replace(/\/+$/, '')}/connections` }))
  })
}
