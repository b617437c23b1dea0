/**
 * Fixtures for the token service tests: the token and registration services listening on real ports
 * against a real Redis (one prefix per test), a stand-in protected resource that only serves its RFC 9728
 * metadata (the real gateway is another service), and a small browser (cookie jar, manual redirects,
 * forms) that signs in and answers the consent page over HTTP.
 */
import Fastify from 'fastify'
import { createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { testRedis, testEnv, freePort, Browser, authorizeInBrowser, hiddenField, type TestRedis } from '@uspl/testing'

export { Browser, hiddenField, location, authorizeInBrowser } from '@uspl/testing'
import { AccountStore, s256, randomToken, type User } from '@uspl/core'
import { build as buildToken, type TokenAppOptions } from '../src/app.ts'
import { loadConfig as loadTokenConfig, type Config as TokenConfig } from '../src/config.ts'
import { build as buildRegistration } from '@uspl/registration'
import { loadConfig as loadRegistrationConfig } from '@uspl/registration/config'
import type { FastifyInstance } from 'fastify'
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js'
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'

interface T {
  teardown: (fn: () => unknown) => void
}

export interface Stack {
  r: TestRedis
  token: FastifyInstance
  registration: FastifyInstance
  config: TokenConfig
  issuer: string
  registrationUrl: string
  resource: string
  user: User
  password: string
}

async function listenOn (t: T, app: FastifyInstance, port: number): Promise<void> {
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
}

/**
 * The token and registration services on real ports, plus a resource that serves its metadata. The two
 * ports are chosen before the apps are built (their URLs are configuration), so a parallel test can take
 * one in between: then the whole stack starts again on new ports (at most three tries).
 */
export async function startStack (t: T, env: Record<string, string> = {}, tokenOptions: Pick<TokenAppOptions, 'cimdFetch'> = {}): Promise<Stack> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOnce(t, env, tokenOptions)
    } catch (err) {
      if (attempt >= 3 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    }
  }
}

async function startStackOnce (t: T, env: Record<string, string>, tokenOptions: Pick<TokenAppOptions, 'cimdFetch'>): Promise<Stack> {
  const r = await testRedis(t)
  const [tokenPort, registrationPort] = await Promise.all([freePort(), freePort()])
  const resourceApp = Fastify()
  t.teardown(() => resourceApp.close())
  let prm: Record<string, unknown> = {}
  resourceApp.get('/.well-known/oauth-protected-resource/mcp', async () => prm)
  resourceApp.get('/.well-known/oauth-protected-resource', async () => prm)
  await resourceApp.listen({ port: 0, host: '127.0.0.1' })
  const address = resourceApp.server.address()
  if (!address || typeof address === 'string') throw new Error('no address')
  const resource = `http://127.0.0.1:${address.port}/mcp`
  const issuer = `http://127.0.0.1:${tokenPort}`
  const registrationUrl = `http://127.0.0.1:${registrationPort}`
  prm = { resource, authorization_servers: [issuer], scopes_supported: ['mcp:tools'], bearer_methods_supported: ['header'] }

  const shared = { ISSUER_URL: issuer, REGISTRATION_URL: registrationUrl, GATEWAY_RESOURCE_URL: resource, CONNECTIONS_URL: 'http://127.0.0.1:1' }
  const config = loadTokenConfig(testEnv(r, { ...shared, SIGNING_KEYS_CACHE_S: '0', ...env }))
  const token = await buildToken(config, { redis: r.redis, logger: false, ...tokenOptions })
  const registration = await buildRegistration(loadRegistrationConfig(testEnv(r, { ...shared, ...env })), { redis: r.redis, logger: false })
  await Promise.all([listenOn(t, token, tokenPort), listenOn(t, registration, registrationPort)])

  const password = `pw-${randomToken(9)}`
  const user = await new AccountStore(r.redis).createUser({ email: 'ada@example.test', name: 'Ada', password })
  return { r, token, registration, config, issuer, registrationUrl, resource, user, password }
}

/** A PKCE pair. */
export function pkce (): { verifier: string, challenge: string } {
  const verifier = randomToken(32)
  return { verifier, challenge: s256(verifier) }
}

/** Registers a client through the registration service (inject: no network needed). */
export async function registerClient (stack: Stack, metadata: Record<string, unknown> = {}): Promise<{ client_id: string, registration_access_token: string, redirect_uris: string[] }> {
  const res = await stack.registration.inject({ method: 'POST', url: '/register', payload: { client_name: 'Test Client', redirect_uris: ['http://127.0.0.1:9999/callback'], ...metadata } })
  if (res.statusCode !== 201) throw new Error(`registration failed: ${res.body}`)
  return res.json()
}

/** Runs the browser part of the code flow for a client and returns the code (and the verifier used). */
export async function obtainCode (stack: Stack, clientId: string, opts: { redirectUri?: string, scope?: string, state?: string, browser?: Browser } = {}): Promise<{ code: string, verifier: string, redirectUri: string, callback: URL }> {
  const { verifier, challenge } = pkce()
  const redirectUri = opts.redirectUri ?? 'http://127.0.0.1:9999/callback'
  const url = new URL(`${stack.issuer}/authorize`)
  url.search = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', scope: opts.scope ?? 'mcp:tools', state: opts.state ?? 'st-1', resource: stack.resource }).toString()
  const callback = await authorizeInBrowser(opts.browser ?? new Browser(), url.toString(), { issuer: stack.issuer, email: stack.user.email, password: stack.password })
  const code = callback.searchParams.get('code')
  if (!code) throw new Error(`no code in ${callback}`)
  return { code, verifier, redirectUri, callback }
}

export async function tokenRequest (stack: Stack, form: Record<string, string>): Promise<{ status: number, body: Record<string, unknown>, headers: Record<string, unknown> }> {
  const res = await stack.token.inject({ method: 'POST', url: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(form).toString() })
  return { status: res.statusCode, body: res.json(), headers: res.headers }
}

/** Code flow through to tokens. */
export async function obtainTokens (stack: Stack, clientId: string): Promise<{ access_token: string, refresh_token: string, scope: string }> {
  const { code, verifier, redirectUri } = await obtainCode(stack, clientId)
  const res = await tokenRequest(stack, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: clientId, resource: stack.resource })
  if (res.status !== 200) throw new Error(`token request failed: ${JSON.stringify(res.body)}`)
  return res.body as { access_token: string, refresh_token: string, scope: string }
}

export function decodeJwt (token: string): { header: Record<string, unknown>, claims: Record<string, unknown> } {
  const [h, c] = token.split('.')
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), claims: JSON.parse(Buffer.from(c, 'base64url').toString()) }
}

/** Verifies a JWT's ES256 signature against a JWKS (independently of the service's own code). */
export function verifyWithJwks (token: string, jwks: { keys: Array<Record<string, unknown>> }): boolean {
  const [h, c, s] = token.split('.')
  const kid = decodeJwt(token).header.kid
  const jwk = jwks.keys.find((k) => k.kid === kid)
  if (!jwk) return false
  const key = createPublicKey({ key: jwk as never, format: 'jwk' })
  return cryptoVerify('sha256', Buffer.from(`${h}.${c}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))
}

/** Every key under the test prefix matching a pattern (relative to the prefix). */
export async function keysMatching (r: TestRedis, pattern: string): Promise<string[]> {
  return (await r.raw.keys(`${r.prefix}${pattern}`)).map((k) => k.slice(r.prefix.length))
}

/** An MCP SDK OAuth client whose browser step signs in and consents; with `clientMetadataUrl` it uses CIMD. */
export class TestProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined
  saved: OAuthTokens | undefined
  verifier = ''
  lastCallback: URL | null = null
  readonly browser = new Browser()
  constructor (private readonly signin: { issuer: string, email: string, password: string }, readonly clientMetadataUrl?: string) {}

  get redirectUrl (): string { return 'http://127.0.0.1:53682/callback' }
  get clientMetadata (): OAuthClientMetadata {
    return { client_name: this.clientMetadataUrl ? 'SDK CIMD Client' : 'SDK Test Client', redirect_uris: [this.redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }
  }

  state (): string { return 'sdk-state-1' }
  clientInformation (): OAuthClientInformationMixed | undefined { return this.client }
  saveClientInformation (info: OAuthClientInformationMixed): void { this.client = info }
  tokens (): OAuthTokens | undefined { return this.saved }
  saveTokens (tokens: OAuthTokens): void { this.saved = tokens }
  saveCodeVerifier (v: string): void { this.verifier = v }
  codeVerifier (): string { return this.verifier }
  async redirectToAuthorization (url: URL): Promise<void> {
    this.lastCallback = await authorizeInBrowser(this.browser, url.toString(), this.signin)
  }
}

/** Signs a browser in (the sign-in form with its CSRF cookie), so it holds a session cookie. */
export async function signIn (stack: Stack, browser: Browser = new Browser()): Promise<Browser> {
  const page = await browser.request(`${stack.issuer}/signin`)
  const html = await page.text()
  const res = await browser.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(html, 'csrf'), email: stack.user.email, password: stack.password } })
  if (res.status !== 303 || !browser.cookies.has('uspl_session')) throw new Error(`sign-in failed: ${res.status}`)
  return browser
}
