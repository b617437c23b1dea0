import type { FastifyInstance } from 'fastify'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import cors from '@fastify/cors'
import { baseFastify, rateLimits, oauthTooMany, type AppOptions } from '@uspl/server'
import type { Config } from './config.ts'
import context, { type CimdFetchOverrides } from './lib/context.ts'
import basicChallenge from './lib/basic-challenge.ts'
import enterpriseContext from './lib/enterprise-context.ts'
import metadata from './routes/metadata.ts'
import jwks from './routes/jwks.ts'
import authorize from './routes/authorize.ts'
import signin from './routes/signin.ts'
import consent from './routes/consent.ts'
import token from './routes/token.ts'
import revoke from './routes/revoke.ts'
import introspect from './routes/introspect.ts'
import ssf from './routes/ssf.ts'
import ssfReceiver from './routes/ssf-receiver.ts'

export type { Config }

export interface TokenAppOptions extends AppOptions {
  /** tests: the CA and DNS resolver the client metadata fetcher uses */
  cimdFetch?: CimdFetchOverrides
}

export async function build (config: Config, options: TokenAppOptions = {}): Promise<FastifyInstance> {
  const app = baseFastify('token', config, options)
  // forms are small; a body past this is not a sign-in or a token request
  await app.register(formbody, { bodyLimit: 16 * 1024 })
  await app.register(cookie)
  // CORS is open (any origin, no credentials) on the documents and token endpoints browsers-based clients
  // call; the pages (authorize, sign-in, consent) and introspection opt out with `config.cors: false`
  await app.register(cors, { origin: '*', methods: ['GET', 'POST'], maxAge: 600 })
  // failed credentials at /token, /revoke and /introspect, per address and client, shared by replicas
  await app.register(rateLimits, { service: 'token', config, error: oauthTooMany })
  await app.register(context, { config, cimdFetch: options.cimdFetch })
  await app.register(basicChallenge, { realm: config.ISSUER_URL })
  await app.register(enterpriseContext, { config })
  await app.register(metadata)
  await app.register(jwks)
  await app.register(authorize)
  await app.register(signin)
  await app.register(consent)
  await app.register(token)
  await app.register(revoke)
  await app.register(introspect)
  await app.register(ssf)
  await app.register(ssfReceiver)
  return app
}
