/**
 * Refresh-token chains for the token benchmarks. Each chain starts the way a real client's does: an
 * authorization code (issued through the token service's own CodeStore, standing in for the sign-in and
 * consent pages) redeemed at the real /token endpoint with its PKCE verifier; from then on every refresh
 * is a real `refresh_token` grant over HTTP that rotates the token.
 */
import { randomBytes } from 'node:crypto'
import type { Dispatcher } from 'undici'
import type { RedisClient } from '@uspl/redis'
import { s256 } from '@uspl/core'
import { CodeStore } from '@uspl/token/lib/codes'
import type { SeededGrant } from './seed.ts'

export const REDIRECT_URI = 'http://127.0.0.1:9/callback'

export interface Chain { clientId: string, refreshToken: string, rotations: number }

async function postForm (pool: Dispatcher, path: string, form: Record<string, string>): Promise<{ status: number, body: Record<string, unknown> | null, text: string }> {
  const res = await pool.request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString()
  })
  const text = await res.body.text()
  let body: Record<string, unknown> | null = null
  try { body = JSON.parse(text) as Record<string, unknown> } catch { /* not JSON */ }
  return { status: res.statusCode, body, text }
}

/** Redeems one authorization code per grant at /token; the chains hold the first refresh tokens. */
export async function startChains (redis: RedisClient, pool: Dispatcher, grants: SeededGrant[], resource: string): Promise<Chain[]> {
  const codes = new CodeStore(redis)
  return Promise.all(grants.map(async (g) => {
    const verifier = randomBytes(32).toString('base64url')
    const code = await codes.issue({ clientId: g.clientId, redirectUri: REDIRECT_URI, codeChallenge: s256(verifier), resource, scope: 'mcp:tools', userId: g.userId, authTime: Math.floor(Date.now() / 1000), grantId: g.grantId })
    const res = await postForm(pool, '/token', { grant_type: 'authorization_code', code, code_verifier: verifier, client_id: g.clientId, redirect_uri: REDIRECT_URI })
    if (res.status !== 200 || typeof res.body?.refresh_token !== 'string') throw new Error(`authorization_code grant failed: HTTP ${res.status} ${res.text.slice(0, 300)}`)
    return { clientId: g.clientId, refreshToken: res.body.refresh_token, rotations: 0 }
  }))
}

/** One refresh_token grant; on success the chain holds the rotated token. */
export async function refresh (pool: Dispatcher, chain: Chain): Promise<true | string> {
  const res = await postForm(pool, '/token', { grant_type: 'refresh_token', refresh_token: chain.refreshToken, client_id: chain.clientId })
  if (res.status !== 200) return `http ${res.status} ${String(res.body?.error ?? '')}`.trim()
  const next = res.body?.refresh_token
  if (typeof next !== 'string' || next === chain.refreshToken || typeof res.body?.access_token !== 'string') return 'no rotated refresh token'
  chain.refreshToken = next
  chain.rotations++
  return true
}
