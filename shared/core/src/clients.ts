/**
 * Registered clients (RFC 7591). Public clients only: no client secret exists. The registration access
 * token (RFC 7592) is stored hashed and compared in constant time. A client unused for the idle period
 * expires (its key carries the TTL, renewed on use).
 */
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'
import { newId, randomToken, hashSecret, constantTimeEqual, nowSeconds } from './crypto.ts'

export interface ClientMetadata {
  redirect_uris: string[]
  /** `private_key_jwt` only for clients identified by a metadata document (CIMD), with `jwks` or `jwks_uri` */
  token_endpoint_auth_method: 'none' | 'private_key_jwt'
  jwks_uri?: string
  jwks?: { keys: Array<Record<string, unknown>> }
  grant_types: string[]
  response_types: string[]
  client_name?: string
  client_uri?: string
  logo_uri?: string
  scope?: string
  contacts?: string[]
  tos_uri?: string
  policy_uri?: string
  software_id?: string
  software_version?: string
}

/** `registered` through RFC 7591; `metadata_document`: the client_id is an https URL (CIMD) */
export type ClientKind = 'registered' | 'metadata_document'

export interface Client {
  clientId: string
  kind: ClientKind
  metadata: ClientMetadata
  issuedAt: number
  lastUsedAt: number
  disabledAt: number | null
  /** registration hygiene: the earlier identical registration (same address, same metadata) this repeats */
  duplicateOf: string | null
}

const REGISTERED_ID = /^[A-Za-z0-9_-]{1,64}$/
/** The longest https client_id (a metadata document URL) accepted anywhere. */
export const MAX_DOCUMENT_CLIENT_ID_LENGTH = 512

/** Whether `clientId` looks like a client id at all: a registered id, or an https URL (CIMD). */
export function isClientIdShape (clientId: string): boolean {
  return REGISTERED_ID.test(clientId) || (clientId.startsWith('https://') && clientId.length <= MAX_DOCUMENT_CLIENT_ID_LENGTH)
}

/** The client a stored record (HGETALL of keys.client) describes; null for no record. */
export function toClient (h: Record<string, string>): Client | null {
  if (!h.client_id) return null
  return {
    clientId: h.client_id,
    kind: h.kind === 'metadata_document' ? 'metadata_document' : 'registered',
    metadata: JSON.parse(h.metadata) as ClientMetadata,
    issuedAt: Number(h.issued_at),
    lastUsedAt: Number(h.last_used_at),
    disabledAt: h.disabled_at ? Number(h.disabled_at) : null,
    duplicateOf: h.duplicate_of ?? null
  }
}

export class ClientStore {
  constructor (private readonly redis: RedisClient, private readonly idleTtlS: number) {}

  /**
   * Registers a client. `clientId` may be chosen by the caller (a fresh `newId('cli', 16)`); a `duplicateOf`
   * registration starts with the short `firstTtlS` instead of the idle period, until its first use.
   */
  async create (metadata: ClientMetadata, opts: { clientId?: string, duplicateOf?: string, firstTtlS?: number } = {}): Promise<{ client: Client, registrationAccessToken: string }> {
    const clientId = opts.clientId ?? newId('cli', 16)
    const registrationAccessToken = randomToken(32)
    const now = nowSeconds()
    await this.redis.multi()
      .hset(keys.client(clientId), {
        client_id: clientId,
        metadata: JSON.stringify(metadata),
        issued_at: String(now),
        last_used_at: String(now),
        rat_hash: hashSecret(registrationAccessToken),
        ...(opts.duplicateOf ? { duplicate_of: opts.duplicateOf } : {})
      })
      .expire(keys.client(clientId), opts.firstTtlS ?? this.idleTtlS)
      .sadd(keys.clients(), clientId)
      .exec()
    return { client: { clientId, kind: 'registered', metadata, issuedAt: now, lastUsedAt: now, disabledAt: null, duplicateOf: opts.duplicateOf ?? null }, registrationAccessToken }
  }

  /**
   * Records (or updates) the client a metadata document describes, so that it is listed, counted and
   * disabled like a registered one. Its first-seen time and any disabled mark are kept; it idles out like
   * a registered client. No registration access token exists for it.
   */
  async upsertDocumentClient (clientId: string, metadata: ClientMetadata): Promise<void> {
    const now = String(nowSeconds())
    await this.redis.multi()
      .hsetnx(keys.client(clientId), 'issued_at', now)
      .hsetnx(keys.client(clientId), 'last_used_at', now)
      .hset(keys.client(clientId), { client_id: clientId, kind: 'metadata_document', metadata: JSON.stringify(metadata) })
      .expire(keys.client(clientId), this.idleTtlS)
      .sadd(keys.clients(), clientId)
      .exec()
  }

  async get (clientId: string): Promise<Client | null> {
    if (!isClientIdShape(clientId)) return null
    return toClient(await this.redis.hgetall(keys.client(clientId)))
  }

  /** Checks an RFC 7592 registration access token in constant time. */
  async verifyRegistrationToken (clientId: string, token: string): Promise<boolean> {
    if (!REGISTERED_ID.test(clientId)) return false
    const stored = await this.redis.hget(keys.client(clientId), 'rat_hash')
    return constantTimeEqual(stored ?? 'no-client', hashSecret(token)) && stored !== null
  }

  /** Marks the client used and renews its idle expiry. */
  async touch (clientId: string): Promise<void> {
    await this.redis.multi()
      .hset(keys.client(clientId), 'last_used_at', String(nowSeconds()))
      .expire(keys.client(clientId), this.idleTtlS)
      .exec()
  }

  async setDisabled (clientId: string, disabled: boolean): Promise<void> {
    if (disabled) await this.redis.hset(keys.client(clientId), 'disabled_at', String(nowSeconds()))
    else await this.redis.hdel(keys.client(clientId), 'disabled_at')
  }

  async remove (clientId: string): Promise<void> {
    await this.redis.multi().del(keys.client(clientId)).srem(keys.clients(), clientId).exec()
  }

  async list (): Promise<Client[]> {
    const ids = await this.redis.smembers(keys.clients())
    const out: Client[] = []
    for (const id of ids) {
      const c = await this.get(id)
      if (c) out.push(c)
      else await this.redis.srem(keys.clients(), id)
    }
    return out
  }
}
