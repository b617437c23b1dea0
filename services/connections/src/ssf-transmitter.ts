/**
 * The Shared Signals transmitter as the follow-up worker runs it here: SETs are issued by our issuer
 * (ISSUER_URL) and signed with the issuer's own signing keys, read through the token service's key module
 * (Redis, or the same SIGNING_KEYS_FILE), so receivers verify them with the issuer's published JWKS.
 */
import type { FastifyInstance } from 'fastify'
import { AccountStore, SsfStreamStore, type SsfTransmitter } from '@uspl/core'
import { KeyRing, parseKek } from '@uspl/core/signing-keys'
import type { Config } from './config.ts'

export function securityEventTransmitter (app: FastifyInstance, config: Config): SsfTransmitter {
  const keyRing = new KeyRing({ redis: app.redis, file: config.SIGNING_KEYS_FILE, cacheS: 30, accessTokenTtlS: config.ACCESS_TOKEN_TTL_S, kek: parseKek(config.SIGNING_KEYS_KEK) })
  return {
    issuer: config.ISSUER_URL,
    streams: new SsfStreamStore(app.redis),
    accounts: new AccountStore(app.redis),
    signingKey: async () => (await keyRing.current()).signer
  }
}
