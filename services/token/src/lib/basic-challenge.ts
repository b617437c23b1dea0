/**
 * RFC 6749 §5.2: when a client authenticated with HTTP Basic and is refused with 401 `invalid_client`, the
 * answer MUST carry `WWW-Authenticate` for the scheme it used. Routes opt in with `config.basicChallenge`
 * (/token, /revoke); every refusal of those routes gets the challenge, whichever step raised it.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** a 401 answer to a request with HTTP Basic credentials carries `WWW-Authenticate: Basic` */
    basicChallenge?: boolean
  }
}

async function basicChallenge (app: FastifyInstance, opts: { realm: string }): Promise<void> {
  const challenge = `Basic realm="${opts.realm.replace(/["\\]/g, '')}", charset="UTF-8"`
  app.addHook('onSend', async (request, reply) => {
    if (reply.statusCode !== 401 || request.routeOptions.config.basicChallenge !== true) return
    const header = request.headers.authorization
    if (typeof header === 'string' && /^basic(\s|$)/i.test(header) && !reply.hasHeader('www-authenticate')) reply.header('www-authenticate', challenge)
  })
}

export default fp(basicChallenge, { name: 'uspl-token-basic-challenge', fastify: '5.x' })
