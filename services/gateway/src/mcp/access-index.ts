/**
 * One index of what a replica holds open on behalf of a grant: MCP sessions, and requests served without
 * one (stateless 2026-07-28 requests, requests forwarded to another replica). Each item is filed under its
 * grant, client and user, and, when it ends with the token that opened it (a GET stream, a stateless
 * stream), under that token's jti. A revocation event then finds exactly its items by key, never by
 * scanning what else is open.
 */
import type { RevocationEvent } from '@uspl/core'

export interface Held {
  readonly grantId: string
  readonly clientId: string
  readonly userId: string
}

function addTo<K, V> (map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key)
  if (!set) map.set(key, set = new Set())
  set.add(value)
}

function removeFrom<K, V> (map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key)
  if (!set) return
  set.delete(value)
  if (set.size === 0) map.delete(key)
}

export class AccessIndex<T extends Held> {
  private readonly byGrant = new Map<string, Set<T>>()
  private readonly byClient = new Map<string, Set<T>>()
  private readonly byUser = new Map<string, Set<T>>()
  private readonly byJti = new Map<string, Set<T>>()

  add (item: T): void {
    addTo(this.byGrant, item.grantId, item)
    addTo(this.byClient, item.clientId, item)
    addTo(this.byUser, item.userId, item)
  }

  remove (item: T): void {
    removeFrom(this.byGrant, item.grantId, item)
    removeFrom(this.byClient, item.clientId, item)
    removeFrom(this.byUser, item.userId, item)
  }

  /** Files an item as ending with one access token (until `untrackToken`). */
  trackToken (jti: string, item: T): void {
    addTo(this.byJti, jti, item)
  }

  untrackToken (jti: string, item: T): void {
    removeFrom(this.byJti, jti, item)
  }

  ofGrant (grantId: string): T[] {
    return [...this.byGrant.get(grantId) ?? []]
  }

  /**
   * What a revocation event names: for one token, what ends with that token; otherwise everything of its
   * grants, and for a client or user scope everything of that client or user.
   */
  matching (event: RevocationEvent): Set<T> {
    if (event.scope === 'token') return new Set(this.byJti.get(event.jti ?? ''))
    const out = new Set<T>()
    for (const gid of event.grantIds) for (const item of this.byGrant.get(gid) ?? []) out.add(item)
    if (event.scope === 'client' && event.clientId) for (const item of this.byClient.get(event.clientId) ?? []) out.add(item)
    if (event.scope === 'user' && event.userId) for (const item of this.byUser.get(event.userId) ?? []) out.add(item)
    return out
  }
}
