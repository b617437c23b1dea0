/**
 * Dynamic client registration (RFC 7591): public clients only. The response carries the client id, the
 * accepted metadata, and a registration access token (shown once, stored hashed) for RFC 7592.
 */
import type { FastifyInstance } from 'fastify'
import { validateClientMetadata } from '../lib/client-metadata.ts'
import { clientInformation } from '../lib/client-response.ts'
import { firstRegistrationFor, registrationFingerprint } from '../lib/duplicates.ts'
import { newId } from '@uspl/core'

export const REGISTRATION_BODY_LIMIT = 16 * 1024

export default async function register (app: FastifyInstance): Promise<void> {
  const { clients, config } = app.registrationContext
  app.post('/register', { bodyLimit: REGISTRATION_BODY_LIMIT, config: { public: true, rateLimit: { max: config.REGISTRATION_RATE_LIMIT_MAX, timeWindow: config.REGISTRATION_RATE_LIMIT_WINDOW_S * 1000 } } }, async (request, reply) => {
    // step: validate the metadata (refusals name the field and why)
    const metadata = validateClientMetadata(request.body)
    // step: hygiene (an identical registration from the same address within the window is a duplicate)
    const clientId = newId('cli', 16)
    const duplicateOf = config.REGISTRATION_DUPLICATE_WINDOW_S > 0
      ? await firstRegistrationFor(app.redis, registrationFingerprint(request.ip, metadata), clientId, config.REGISTRATION_DUPLICATE_WINDOW_S)
      : null
    // step: store the client
    const { client, registrationAccessToken } = await clients.create(metadata, duplicateOf ? { clientId, duplicateOf, firstTtlS: config.REGISTRATION_DUPLICATE_TTL_S } : { clientId })
    request.log.info({ clientId: client.clientId, clientName: metadata.client_name, duplicateOf }, 'client registered')
    // step: answer with what was registered
    reply.code(201).header('cache-control', 'no-store').header('pragma', 'no-cache')
    return { ...clientInformation(client, config.REGISTRATION_URL), registration_access_token: registrationAccessToken }
  })
}
