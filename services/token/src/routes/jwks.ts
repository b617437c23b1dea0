/** The public signing keys (JWKS), cached by verifiers for JWKS_MAX_AGE_S; a rotation publishes a key longer than that before it signs. */
import type { FastifyInstance } from 'fastify'

export default async function jwks (app: FastifyInstance): Promise<void> {
  const { keyRing, config } = app.tokenContext
  for (const url of ['/.well-known/jwks.json', '/jwks.json']) {
    app.get(url, { config: { public: true } }, async (_request, reply) => {
      const set = await keyRing.current()
      reply.header('cache-control', `public, max-age=${config.JWKS_MAX_AGE_S}`)
      return { keys: set.published.map((k) => k.jwk) }
    })
  }
}
