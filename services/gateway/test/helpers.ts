/**
 * Fixtures for the gateway tests: a stand-in issuer (a real ES256 key, its JWKS served over loopback
 * HTTP, tokens signed with node:crypto so bad ones can be forged too), gateways listening on real ports
 * against a real Redis, grants created through the shared GrantStore, and MCP clients (the SDK's, or raw
 * fetch where a test must watch one SSE stream end).
 */
import { generateKeyPairSync, createHmac, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { EventEmitter } from 'node:events'
import { listen, freePort, testEnv, testRedis, type TestRedis } from '@uspl/testing'
import { GrantStore, AccountStore, RedisWorkspaceRepository, nowSeconds, type Grant, type Page, type PageRequest, type Recording, type Workspace } from '@uspl/core'
import { build, type GatewayOptions } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'

interface Teardown { teardown: (fn: () => unknown) => void }

export const KID = 'test-key-1'

function b64 (value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

export interface SignOptions {
  header?: Record<string, unknown>
  /** sign with another key (a wrong signature) */
  key?: KeyObject
  /** HS256 with this secret instead of ES256 */
  hmacSecret?: string
  /** no signature at all (alg none) */
  unsigned?: boolean
}

export class Issuer {
  jwksHits = 0
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  url = ''

  constructor () {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    this.privateKey = pair.privateKey
    this.publicKey = pair.publicKey
  }

  get publicPem (): string {
    return this.publicKey.export({ format: 'pem', type: 'spki' }).toString()
  }

  /** A compact JWT; ES256 with the issuer's key unless told otherwise. */
  sign (payload: Record<string, unknown>, opts: SignOptions = {}): string {
    const alg = opts.unsigned ? 'none' : opts.hmacSecret !== undefined ? 'HS256' : 'ES256'
    const header = { alg, typ: 'at+jwt', kid: KID, ...opts.header }
    const input = `${b64(header)}.${b64(payload)}`
    if (opts.unsigned) return `${input}.`
    if (opts.hmacSecret !== undefined) return `${input}.${createHmac('sha256', opts.hmacSecret).update(input).digest('base64url')}`
    const signature = cryptoSign('sha256', Buffer.from(input), { key: opts.key ?? this.privateKey, dsaEncoding: 'ieee-p1363' })
    return `${input}.${signature.toString('base64url')}`
  }
}

export async function startIssuer (t: Teardown): Promise<Issuer> {
  const issuer = new Issuer()
  const jwk = { ...issuer.publicKey.export({ format: 'jwk' }), kid: KID, alg: 'ES256', use: 'sig' }
  const app = Fastify()
  app.get('/.well-known/jwks.json', async () => {
    issuer.jwksHits++
    return { keys: [jwk] }
  })
  issuer.url = await listen(t, app)
  return issuer
}

export interface Gateway {
  app: FastifyInstance
  url: string
  mcpUrl: string
}

/** What the request helpers need of a gateway: also a gateway in a child process */
export type Endpoint = Pick<Gateway, 'mcpUrl'>

export async function startGateway (t: Teardown, r: { url: string, prefix: string }, issuer: Issuer, env: Record<string, string> = {}, logger?: object, options: Omit<GatewayOptions, 'logger'> = {}): Promise<Gateway> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const config = loadConfig(testEnv(r, { ISSUER_URL: issuer.url, GATEWAY_RESOURCE_URL: `${url}/mcp`, PORT: String(port), ...env }))
  const app = await build(config, { ...options, logger: logger ?? false })
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
  await app.revocationFeed.waitReady()
  return { app, url, mcpUrl: `${url}/mcp` }
}

export async function grantFor (r: TestRedis, userId: string, clientId = `cli_${randomUUID().slice(0, 8)}`): Promise<Grant> {
  return new GrantStore(r.redis, r.prefix).ensure({ userId, clientId, scope: 'mcp:tools', resource: 'test', authTime: nowSeconds(), ttlS: 3600 })
}

/** The claims the token service puts in an access token, for this grant and gateway. */
export function claimsFor (issuer: Issuer, gateway: Endpoint, grant: Grant, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds()
  return {
    iss: issuer.url,
    sub: grant.userId,
    aud: gateway.mcpUrl,
    client_id: grant.clientId,
    scope: 'mcp:tools',
    jti: randomUUID(),
    iat: now,
    exp: now + 900,
    auth_time: now,
    grant_id: grant.id,
    ...extra
  }
}

export function tokenFor (issuer: Issuer, gateway: Endpoint, grant: Grant, extra: Record<string, unknown> = {}): string {
  return issuer.sign(claimsFor(issuer, gateway, grant, extra))
}

/** An MCP SDK client over Streamable HTTP with a bearer token. */
export async function connect (t: Teardown, gateway: Endpoint, token: string): Promise<{ client: Client, transport: StreamableHTTPClientTransport, sessionId: string }> {
  const client = new Client({ name: 'gateway-test', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(gateway.mcpUrl), { requestInit: { headers: { Authorization: `Bearer ${token}` } } })
  await client.connect(transport)
  t.teardown(() => client.close())
  if (!transport.sessionId) throw new Error('no session id')
  return { client, transport, sessionId: transport.sessionId }
}

export const PROTOCOL = '2025-06-18'

export function mcpHeaders (token: string, sessionId?: string): Record<string, string> {
  const h: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL }
  if (sessionId) h['mcp-session-id'] = sessionId
  return h
}

/** Headers of a request without a body (GET, DELETE). */
export function bodylessHeaders (token: string, sessionId?: string): Record<string, string> {
  const { 'content-type': _, ...rest } = mcpHeaders(token, sessionId)
  return rest
}

export function initializeBody (protocolVersion = PROTOCOL): string {
  return JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } } })
}

/** initialize + notifications/initialized over plain fetch; returns the session id. */
export async function rawSession (gateway: Endpoint, token: string, protocolVersion = PROTOCOL): Promise<string> {
  const res = await fetch(gateway.mcpUrl, { method: 'POST', headers: mcpHeaders(token), body: initializeBody(protocolVersion) })
  await res.text()
  const sessionId = res.headers.get('mcp-session-id')
  if (res.status !== 200 || !sessionId) throw new Error(`initialize answered ${res.status}`)
  const ack = await fetch(gateway.mcpUrl, { method: 'POST', headers: mcpHeaders(token, sessionId), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  await ack.text()
  if (ack.status !== 202) throw new Error(`initialized answered ${ack.status}`)
  return sessionId
}

export async function rawCall (gateway: Endpoint, token: string, sessionId: string | undefined, method: string, params: Record<string, unknown> = {}): Promise<Response> {
  return fetch(gateway.mcpUrl, { method: 'POST', headers: mcpHeaders(token, sessionId), body: JSON.stringify({ jsonrpc: '2.0', id: 2, method, params }) })
}

export interface OpenStream {
  status: number
  /** resolves with the time (ms) the stream ended, by the server or by a broken connection */
  ended: Promise<number>
  abort: () => void
}

/** Opens the session's GET SSE stream and watches for its end. */
export async function openStream (t: Teardown, gateway: Endpoint, token: string, sessionId: string): Promise<OpenStream> {
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const res = await fetch(gateway.mcpUrl, { method: 'GET', headers: { ...bodylessHeaders(token, sessionId), accept: 'text/event-stream' }, signal: controller.signal })
  const ended = (async () => {
    try {
      const reader = res.body!.getReader()
      for (;;) {
        const { done } = await reader.read()
        if (done) break
      }
    } catch { /* a destroyed connection ends the stream too */ }
    return Date.now()
  })()
  return { status: res.status, ended, abort: () => controller.abort() }
}

/** The text of a tool result. */
export function text (result: unknown): string {
  const content = (result as { content?: Array<{ type: string, text?: string }> }).content ?? []
  return content.map((c) => c.text ?? '').join('\n')
}

/** A repository whose listRecordings never answers: a tool call stays in flight until something aborts it. */
export class StuckRepository extends RedisWorkspaceRepository {
  readonly entered = new EventEmitter()
  override listRecordings (_workspaceId: string, _page: PageRequest): Promise<Page<Recording>> {
    this.entered.emit('call')
    return new Promise(() => {})
  }
}

/** A gateway over a StuckRepository, with a workspace "Slow" of which usr_a is a member. */
export async function stuckGateway (t: Teardown): Promise<{ r: TestRedis, issuer: Issuer, repo: StuckRepository, gw: Gateway, ws: Workspace }> {
  const r = await testRedis(t)
  const issuer = await startIssuer(t)
  const repo = new StuckRepository(r.redis)
  const gw = await startGateway(t, r, issuer, {}, undefined, { repository: repo })
  const accounts = new AccountStore(r.redis)
  const ws = await accounts.createWorkspace('Slow')
  await accounts.setRole(ws.id, 'usr_a', 'member')
  return { r, issuer, repo, gw, ws }
}
