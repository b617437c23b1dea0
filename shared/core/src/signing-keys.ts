/**
 * ES256 signing keys. Two sources:
 * - Redis (default): generated on first start and created atomically (the first replica's key wins, every
 *   replica reads the same set); `rotate` adds a key that is published at once and signs only after an
 *   activation delay, and keeps the previous key published until its last token has expired;
 * - a mounted JWK set (SIGNING_KEYS_FILE): private keys; the first signs, all are published.
 * The key id is the RFC 7638 thumbprint of the public key.
 *
 * At rest in Redis the private part is sealed with the key-encryption key SIGNING_KEYS_KEK (AES-256-GCM,
 * the kid as additional data, so a sealed key cannot be moved to another kid). Keys stored in plaintext
 * before a KEK was configured are sealed in place the first time a replica with the KEK reads them (a
 * compare-and-set per key, so concurrent replicas agree). A sealed key without the KEK, or with another
 * KEK, stops the service with a message naming SIGNING_KEYS_KEK: it never signs with a key it cannot read.
 */
import { readFileSync } from 'node:fs'
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { type RedisClient, runScript, script } from '@uspl/redis'
import { keys } from './keys.ts'
import { CLOCK_SKEW_S } from './revocation.ts'
import { nowSeconds } from './crypto.ts'

export interface PublicJwk {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
  kid: string
  alg: 'ES256'
  use: 'sig'
}

interface PrivateJwk {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
  d: string
  kid?: string
}

/** The private JWK sealed with the KEK: AES-256-GCM, base64url parts, `kek` names which KEK (a fingerprint). */
interface SealedJwk { alg: 'A256GCM', kek: string, iv: string, tag: string, ct: string }

/** One key as stored in Redis (a hash field per kid): `privateJwk` in memory, `sealed` at rest with a KEK. */
interface StoredKeyRecord extends Omit<KeyRecord, 'privateJwk'> { privateJwk?: PrivateJwk, sealed?: SealedJwk }

/** The key-encryption key: 32 bytes, from SIGNING_KEYS_KEK (base64 or base64url). */
export interface Kek { key: Buffer, id: string }

export function parseKek (value: string): Kek | null {
  if (value === '') return null
  const key = Buffer.from(value, 'base64')
  if (key.length !== 32) throw new Error('SIGNING_KEYS_KEK must be 32 random bytes, base64-encoded (openssl rand -base64 32)')
  return { key, id: createHash('sha256').update(key).digest('base64url').slice(0, 8) }
}

function seal (record: KeyRecord, kek: Kek): StoredKeyRecord {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', kek.key, iv).setAAD(Buffer.from(record.kid))
  const ct = Buffer.concat([cipher.update(JSON.stringify(record.privateJwk)), cipher.final()])
  const { privateJwk: _, ...rest } = record
  return { ...rest, sealed: { alg: 'A256GCM', kek: kek.id, iv: iv.toString('base64url'), tag: cipher.getAuthTag().toString('base64url'), ct: ct.toString('base64url') } }
}

function unseal (stored: StoredKeyRecord, kek: Kek | null): KeyRecord {
  const { sealed, privateJwk, ...rest } = stored
  if (!sealed) {
    if (!privateJwk) throw new Error(`signing key ${stored.kid} has no private key`)
    return { ...rest, privateJwk }
  }
  if (!kek) throw new Error(`signing key ${stored.kid} is encrypted at rest: set SIGNING_KEYS_KEK to the key-encryption key it was sealed with`)
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek.key, Buffer.from(sealed.iv, 'base64url')).setAAD(Buffer.from(stored.kid))
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'))
    const plain = Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64url')), decipher.final()])
    return { ...rest, privateJwk: JSON.parse(plain.toString('utf8')) as PrivateJwk }
  } catch {
    throw new Error(`SIGNING_KEYS_KEK does not decrypt signing key ${stored.kid} (it was sealed with KEK ${sealed.kek}, this one is ${kek.id})`)
  }
}

function stored (record: KeyRecord, kek: Kek | null): string {
  return JSON.stringify(kek ? seal(record, kek) : record)
}

/** One key as used in memory. */
export interface KeyRecord {
  kid: string
  privateJwk: PrivateJwk
  /** epoch seconds */
  createdAt: number
  /** epoch seconds: the key signs from then on (until a newer key activates) */
  activatesAt: number
  /** creation order: breaks ties between keys activating in the same second (the later one signs) */
  seq?: number
}

export interface LoadedKey {
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
  jwk: PublicJwk
  activatesAt: number
}

export interface KeySet {
  signer: LoadedKey
  /** every key a verifier may meet: pending, signing, and retired ones whose tokens may still be live */
  published: LoadedKey[]
}

export function thumbprint (jwk: { crv: string, kty: string, x: string, y: string }): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
  return createHash('sha256').update(canonical).digest('base64url')
}

export function generateKeyRecord (activatesAt: number, seq = 0): KeyRecord {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = privateKey.export({ format: 'jwk' }) as unknown as PrivateJwk
  const kid = thumbprint(jwk)
  return { kid, privateJwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, d: jwk.d, kid }, createdAt: nowSeconds(), activatesAt, seq }
}

function load (kid: string, privateJwk: PrivateJwk, activatesAt: number): LoadedKey {
  if (privateJwk.kty !== 'EC' || privateJwk.crv !== 'P-256' || !privateJwk.d) throw new Error(`signing key ${kid} is not a private EC P-256 key`)
  const privateKey = createPrivateKey({ key: { kty: 'EC', crv: 'P-256', x: privateJwk.x, y: privateJwk.y, d: privateJwk.d }, format: 'jwk' })
  const publicKey = createPublicKey(privateKey)
  return { kid, privateKey, publicKey, jwk: { kty: 'EC', crv: 'P-256', x: privateJwk.x, y: privateJwk.y, kid, alg: 'ES256', use: 'sig' }, activatesAt }
}

/**
 * Which key signs and which are published at `now`: the newest active key signs; a key stays published
 * until the key after it has signed for longer than an access token lives (plus clock skew).
 */
export function selectKeys (records: KeyRecord[], now: number, accessTokenTtlS: number): { signer: KeyRecord, published: KeyRecord[], retired: KeyRecord[] } {
  if (records.length === 0) throw new Error('no signing keys')
  const sorted = [...records].sort((a, b) => a.activatesAt - b.activatesAt || (a.seq ?? 0) - (b.seq ?? 0) || a.kid.localeCompare(b.kid))
  const active = sorted.filter((r) => r.activatesAt <= now)
  const signer = active.length > 0 ? active[active.length - 1] : sorted[0]
  const published: KeyRecord[] = []
  const retired: KeyRecord[] = []
  sorted.forEach((r, i) => {
    const next = sorted[i + 1]
    const supersededAt = next && next.activatesAt <= now ? next.activatesAt : null
    if (r === signer || supersededAt === null || now < supersededAt + accessTokenTtlS + CLOCK_SKEW_S) published.push(r)
    else retired.push(r)
  })
  return { signer, published, retired }
}

// Creates the first key only when none exists, and answers the set: two replicas starting at once agree.
const ENSURE_KEYS = script('usplEnsureSigningKeys', 1, `
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return redis.call('HGETALL', KEYS[1])
`)

// Seals a plaintext key in place, only if it is still the value that was read (a replica may have won).
const SEAL_KEY = script('usplSealSigningKey', 1, `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end
return 0
`)

export async function ensureKeyRecords (redis: RedisClient, kek: Kek | null = null): Promise<KeyRecord[]> {
  const first = generateKeyRecord(nowSeconds())
  const flat = await runScript(redis, ENSURE_KEYS, keys.signingKeys(), first.kid, stored(first, kek)) as string[]
  const out: KeyRecord[] = []
  for (let i = 1; i < flat.length; i += 2) {
    const raw = JSON.parse(flat[i]) as StoredKeyRecord
    const record = unseal(raw, kek)
    // migration: a key stored before the KEK was set is sealed now
    if (kek && !raw.sealed) await runScript(redis, SEAL_KEY, keys.signingKeys(), flat[i - 1], flat[i], stored(record, kek))
    out.push(record)
  }
  return out
}

/**
 * Adds a key that is published now and signs after `activationDelayS`, and removes keys whose tokens
 * have all expired. Run by the `rotate-keys` command.
 */
export async function rotateKeys (redis: RedisClient, opts: { activationDelayS: number, accessTokenTtlS: number, kek?: Kek | null }): Promise<{ kid: string, activatesAt: number, previousKid: string, removed: string[] }> {
  const kek = opts.kek ?? null
  const before = await ensureKeyRecords(redis, kek)
  const now = nowSeconds()
  const previous = selectKeys(before, now, opts.accessTokenTtlS).signer
  const record = generateKeyRecord(now + opts.activationDelayS, Math.max(...before.map((r) => r.seq ?? 0)) + 1)
  await redis.hset(keys.signingKeys(), record.kid, stored(record, kek))
  const { retired } = selectKeys([...before, record], now, opts.accessTokenTtlS)
  if (retired.length > 0) await redis.hdel(keys.signingKeys(), ...retired.map((r) => r.kid))
  return { kid: record.kid, activatesAt: record.activatesAt, previousKid: previous.kid, removed: retired.map((r) => r.kid) }
}

/** Reads a JWK set with private keys; throws naming the problem. */
export function readKeysFile (path: string): KeyRecord[] {
  let parsed: { keys?: PrivateJwk[] }
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as { keys?: PrivateJwk[] }
  } catch (err) {
    throw new Error(`SIGNING_KEYS_FILE ${path}: ${(err as Error).message}`)
  }
  if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) throw new Error(`SIGNING_KEYS_FILE ${path}: no "keys" array`)
  // the first key signs: give it the latest activation, the others earlier ones (published, not signing)
  return parsed.keys.map((jwk, i) => {
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d) throw new Error(`SIGNING_KEYS_FILE ${path}: key ${i} is not a private EC P-256 key (ES256)`)
    return { kid: jwk.kid ?? thumbprint(jwk), privateJwk: jwk, createdAt: 0, activatesAt: -i }
  })
}

/** The service's view of its keys: read through a short cache, so a rotation reaches every replica. */
export class KeyRing {
  private cached: { at: number, set: KeySet } | null = null
  private loading: Promise<KeySet> | null = null
  private readonly fileRecords: KeyRecord[] | null

  constructor (private readonly opts: { redis: RedisClient, file: string, cacheS: number, accessTokenTtlS: number, kek?: Kek | null }) {
    this.fileRecords = opts.file ? readKeysFile(opts.file) : null
  }

  async current (): Promise<KeySet> {
    const now = Date.now()
    if (this.cached && now - this.cached.at < this.opts.cacheS * 1000) return this.cached.set
    this.loading ??= this.load().finally(() => { this.loading = null })
    const set = await this.loading
    this.cached = { at: now, set }
    return set
  }

  private async load (): Promise<KeySet> {
    const records = this.fileRecords ?? await ensureKeyRecords(this.opts.redis, this.opts.kek ?? null)
    const { signer, published } = this.fileRecords
      ? { signer: records[0], published: records }
      : selectKeys(records, nowSeconds(), this.opts.accessTokenTtlS)
    const loaded = published.map((r) => load(r.kid, r.privateJwk, r.activatesAt))
    return { signer: loaded.find((k) => k.kid === signer.kid) ?? load(signer.kid, signer.privateJwk, signer.activatesAt), published: loaded }
  }

  async verificationKey (kid: string): Promise<KeyObject | null> {
    const set = await this.current()
    return set.published.find((k) => k.kid === kid)?.publicKey ?? null
  }
}
