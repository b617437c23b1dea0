/**
 * A JWKS endpoint on loopback with one freshly generated ES256 public key, for tests of a gateway whose
 * readiness needs the issuer's keys but that verify no token. Returns the JWKS URL; closes with the test.
 */
import { generateKeyPairSync } from 'node:crypto'
import Fastify from 'fastify'
import { listen } from './index.ts'

export async function servedJwks (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'test-readiness', alg: 'ES256', use: 'sig' }
  const app = Fastify()
  app.get('/.well-known/jwks.json', async () => ({ keys: [jwk] }))
  return `${await listen(t, app)}/.well-known/jwks.json`
}
