/**
 * Registration hygiene. Some clients register again on every start (one public report: 58 registrations,
 * 42 identical). A registration from the same source address with the same metadata as one made within
 * the window is still served (it gets its own id and registration access token; nothing secret is
 * shared or reused), but it is marked `duplicate_of` the first one, so operators see the pile-up in
 * GET /v1/clients, and it starts with a short lifetime: unused, it expires after
 * REGISTRATION_DUPLICATE_TTL_S; its first use gives it the normal idle period like any client.
 * The fingerprint is a hash of the address and the metadata in canonical form (keys sorted).
 */
import { createHash } from 'node:crypto'
import type { RedisClient } from '@uspl/redis'
import { keys, type ClientMetadata } from '@uspl/core'

function canonical (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (value && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]))
  return value
}

export function registrationFingerprint (address: string, metadata: ClientMetadata): string {
  return createHash('sha256').update(`${address}\n${JSON.stringify(canonical(metadata))}`).digest('base64url')
}

/**
 * Claims the fingerprint for `clientId` when no registration within the window holds it; otherwise
 * returns the id of the registration that does (and `clientId` is a duplicate of it).
 */
export async function firstRegistrationFor (redis: RedisClient, fingerprint: string, clientId: string, windowS: number): Promise<string | null> {
  // one command: set when absent (with its expiry), and say what was there (Redis ≥ 7: NX with GET)
  // (ioredis applies the key prefix to `call` too)
  return await redis.call('SET', keys.registrationFingerprint(fingerprint), clientId, 'EX', String(windowS), 'NX', 'GET') as string | null
}
