/**
 * The whole product on loopback against one real Redis (one key prefix per test): the registration,
 * token and connections services and two gateway replicas, each a real listening server built from its
 * service's build(). The gateways share one public resource URL, as two replicas behind one ingress do.
 * AI clients are the MCP SDK's own Client, Streamable HTTP transport and OAuth code; the user's browser is
 * the cookie-jar browser from @uspl/testing, signing in and consenting over HTTP.
 */
import { EventEmitter, once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { auth, UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js'
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'
import { testRedis, testEnv, freePort, until, Browser, authorizeInBrowser, type TestRedis } from '@uspl/testing'
import { AccountStore, ApiKeyStore, RedisWorkspaceRepository, randomToken, type User } from '@uspl/core'
import { build as buildToken, type TokenAppOptions } from '@uspl/token'
import { loadConfig as loadToken } from '@uspl/token/config'
import { build as buildRegistration } from '@uspl/registration'
import { loadConfig as loadRegistration } from '@uspl/registration/config'
import { build as buildConnections } from '@uspl/connections'
import { loadConfig as loadConnections } from '@uspl/connections/config'
import { build as buildGateway } from '@uspl/gateway'
import { loadConfig as loadGateway } from '@uspl/gateway/config'

export interface Teardown { teardown: (fn: () => unknown) => void }

export interface Person {
  user: User
  password: string
  /** the person's browser: signed in once, it keeps its session cookie */
  browser: Browser
}

export interface Suite {
  r: TestRedis
  issuer: string
  registrationUrl: string
  connectionsUrl: string
  /** the public resource URL (tokens' audience), served by both replicas */
  resource: string
  /** the /mcp URL of each replica */
  gateways: [string, string]
  operatorKey: string
  workspaceId: string
  person: (name: string) => Promise<Person>
}

async function serve (t: Teardown, app: FastifyInstance, port: number): Promise<void> {
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
}

/** Extra token service settings: a test's metadata-document hosts and the fetcher's CA and resolver. */
export interface SuiteOptions {
  tokenEnv?: Record<string, string>
  tokenOptions?: Pick<TokenAppOptions, 'cimdFetch'>
}

export async function startSuite (t: Teardown, opts: SuiteOptions = {}): Promise<Suite> {
  const r = await testRedis(t)
  const [tokenPort, registrationPort, connectionsPort, gw1, gw2] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()])
  const origin = (port: number): string => `http://127.0.0.1:${port}`
  const urls = {
    ISSUER_URL: origin(tokenPort),
    REGISTRATION_URL: origin(registrationPort),
    CONNECTIONS_URL: origin(connectionsPort),
    GATEWAY_RESOURCE_URL: `${origin(gw1)}/mcp`
  }
  const env = (extra: Record<string, string> = {}): Record<string, string> => testEnv(r, { ...urls, ...extra })
  // every service opens its own Redis connections, as separate processes would
  const token = await buildToken(loadToken(env({ SIGNING_KEYS_CACHE_S: '0', ...opts.tokenEnv })), { logger: false, ...opts.tokenOptions })
  const registration = await buildRegistration(loadRegistration(env()), { logger: false })
  const connections = await buildConnections(loadConnections(env()), { logger: false })
  const replicas = [
    await buildGateway(loadGateway(env({ REPLICA_ID: 'gateway-1' })), { logger: false }),
    await buildGateway(loadGateway(env({ REPLICA_ID: 'gateway-2' })), { logger: false })
  ]
  await Promise.all([
    serve(t, token, tokenPort), serve(t, registration, registrationPort), serve(t, connections, connectionsPort),
    serve(t, replicas[0], gw1), serve(t, replicas[1], gw2)
  ])
  // a replica serves once its revocation feed is subscribed (its readiness says so)
  for (const port of [gw1, gw2, tokenPort, registrationPort, connectionsPort]) {
    await until(async () => (await fetch(`${origin(port)}/health/ready`)).status === 200, 10000, `service on ${port} ready`)
  }

  const accounts = new AccountStore(r.redis)
  const workspace = await accounts.createWorkspace('E2E Workspace')
  const repository = new RedisWorkspaceRepository(r.redis)
  await repository.createRecording(workspace.id, { title: 'Kickoff call', durationSeconds: 1800 }, 'seed')
  const { key: operatorKey } = await new ApiKeyStore(r.redis).create('e2e operator')
  return {
    r,
    issuer: urls.ISSUER_URL,
    registrationUrl: urls.REGISTRATION_URL,
    connectionsUrl: urls.CONNECTIONS_URL,
    resource: urls.GATEWAY_RESOURCE_URL,
    gateways: [`${origin(gw1)}/mcp`, `${origin(gw2)}/mcp`],
    operatorKey,
    workspaceId: workspace.id,
    person: async (name: string) => {
      const password = `pw-${randomToken(9)}`
      const user = await accounts.createUser({ email: `${name.toLowerCase()}-${randomToken(4)}@e2e.test`, name, password })
      await accounts.setRole(workspace.id, user.id, 'member')
      return { user, password, browser: new Browser() }
    }
  }
}

/**
 * Watches the GET (SSE) streams an SDK transport opens, through the transport's own `fetch` option: the
 * stream the SDK reads is the one observed, and its end (by the server, or a broken connection) is an event.
 */
export class StreamWatcher extends EventEmitter {
  opened = 0
  ended = 0
  readonly fetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const res = await fetch(url, init)
    const isStream = (init?.method ?? 'GET') === 'GET' && res.ok && res.body !== null &&
      (res.headers.get('content-type') ?? '').includes('text/event-stream')
    if (!isStream || !res.body) return res
    this.opened++
    this.emit('open')
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
    res.body.pipeTo(writable).catch(() => {}).finally(() => {
      this.ended++
      this.emit('end', Date.now())
    })
    return new Response(readable, { status: res.status, statusText: res.statusText, headers: res.headers })
  }
}

/** An AI client's OAuth side, as the MCP SDK drives it; the redirect step is the person's browser. */
export class AppClient implements OAuthClientProvider {
  info: OAuthClientInformationMixed | undefined
  saved: OAuthTokens | undefined
  verifier = ''
  callback: URL | null = null
  /** how many times the person was sent through the authorization (sign-in/consent) pages */
  consents = 0
  /** set: the client identifies itself by this metadata document URL (CIMD) instead of registering */
  clientMetadataUrl: string | undefined

  constructor (readonly name: string, readonly person: Person, private readonly issuer: string, private readonly port: number) {}

  get redirectUrl (): string { return `http://127.0.0.1:${this.port}/callback` }
  get clientMetadata (): OAuthClientMetadata {
    return { client_name: this.name, redirect_uris: [this.redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }
  }

  clientInformation (): OAuthClientInformationMixed | undefined { return this.info }
  saveClientInformation (info: OAuthClientInformationMixed): void { this.info = info }
  tokens (): OAuthTokens | undefined { return this.saved }
  saveTokens (tokens: OAuthTokens): void { this.saved = tokens }
  saveCodeVerifier (v: string): void { this.verifier = v }
  codeVerifier (): string { return this.verifier }
  /** what the SDK calls when the server refuses what it holds (a dead refresh token: 'tokens') */
  invalidateCredentials (scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    if (scope === 'all' || scope === 'client') this.info = undefined
    if (scope === 'all' || scope === 'tokens') this.saved = undefined
    if (scope === 'all' || scope === 'verifier') this.verifier = ''
  }

  async redirectToAuthorization (url: URL): Promise<void> {
    this.consents++
    this.callback = await authorizeInBrowser(this.person.browser, url.toString(), { issuer: this.issuer, email: this.person.user.email, password: this.person.password })
  }

  get clientId (): string { return String(this.info?.client_id) }

  code (): string {
    const code = this.callback?.searchParams.get('code')
    if (!code) throw new Error(`no code in ${String(this.callback)}`)
    return code
  }

  get grantId (): string {
    const token = this.saved?.access_token
    if (!token) throw new Error('no access token')
    return String(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).grant_id)
  }
}

export interface Connected {
  client: Client
  transport: StreamableHTTPClientTransport
  sessionId: string
  watcher: StreamWatcher
  /** the access token the session was opened with */
  token: string
}

function transportFor (url: string, app: AppClient, watcher: StreamWatcher): StreamableHTTPClientTransport {
  // no automatic reconnection: the test observes exactly the stream the server ended
  return new StreamableHTTPClientTransport(new URL(url), { authProvider: app, fetch: watcher.fetch, reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 } })
}

/**
 * Connects the SDK client to `url` the way a real client does: when what it holds is refused (no token
 * yet, or dead ones), the SDK discovers the authorization server from the 401 challenge, registers if it
 * must, sends the person through sign-in and consent; the code is exchanged (finishAuth) and the client
 * connects with its new token. Resolves once the SDK's GET stream is open.
 */
export async function connectViaChallenge (t: Teardown, url: string, app: AppClient): Promise<Connected> {
  const watcher = new StreamWatcher()
  try {
    return await openSession(t, url, app, watcher)
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err
  }
  await transportFor(url, app, watcher).finishAuth(app.code())
  return openSession(t, url, app, watcher)
}

/**
 * Authorizes against the public resource URL with the SDK's auth() (discovery, registration, consent,
 * code exchange), then connects to `replicaUrl`: the replica an ingress routed this client to.
 */
export async function connectToReplica (t: Teardown, resource: string, replicaUrl: string, app: AppClient): Promise<Connected> {
  if ((await auth(app, { serverUrl: resource })) === 'REDIRECT') {
    const result = await auth(app, { serverUrl: resource, authorizationCode: app.code() })
    if (result !== 'AUTHORIZED') throw new Error(`auth() answered ${result}`)
  }
  return openSession(t, replicaUrl, app, new StreamWatcher())
}

async function openSession (t: Teardown, url: string, app: AppClient, watcher: StreamWatcher): Promise<Connected> {
  const transport = transportFor(url, app, watcher)
  const client = new Client({ name: app.name, version: '1.0.0' })
  const opened = once(watcher, 'open')
  await client.connect(transport)
  t.teardown(() => client.close().catch(() => {}))
  await opened
  if (!transport.sessionId) throw new Error('no session id')
  return { client, transport, sessionId: transport.sessionId, watcher, token: String(app.saved?.access_token) }
}

/** A raw MCP POST, to see exactly what the gateway answers. */
export async function rawPost (url: string, token: string, sessionId?: string): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }
  if (sessionId) headers['mcp-session-id'] = sessionId
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }) })
  await res.arrayBuffer()
  return res
}

export async function refresh (issuer: string, clientId: string, refreshToken: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(`${issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}
