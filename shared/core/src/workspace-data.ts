/**
 * Recordings and recording links of a workspace, behind a repository interface so an upstream API can
 * replace the Redis implementation later. Every read and write is scoped by workspace id: an item of
 * another workspace is "not found", never returned.
 */
import type { RedisClient } from '@uspl/redis'
import { keys } from './keys.ts'
import { newId } from './crypto.ts'

export interface Recording {
  id: string
  workspaceId: string
  title: string
  durationSeconds: number
  createdBy: string
  createdAt: string
}

export type LinkAccess = 'workspace' | 'public'

export interface RecordingLink {
  id: string
  workspaceId: string
  recordingId: string
  title: string
  access: LinkAccess
  expiresAt: string | null
  createdBy: string
  createdAt: string
  updatedAt: string
  url: string
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export interface PageRequest {
  cursor?: string
  limit?: number
}

export interface WorkspaceRepository {
  listRecordings (workspaceId: string, page: PageRequest): Promise<Page<Recording>>
  getRecording (workspaceId: string, id: string): Promise<Recording | null>
  createRecording (workspaceId: string, input: { title: string, durationSeconds: number }, createdBy: string): Promise<Recording>
  /** deletes the recording and its links together */
  deleteRecording (workspaceId: string, id: string): Promise<boolean>
  listRecordingLinks (workspaceId: string, page: PageRequest & { recordingId?: string }): Promise<Page<RecordingLink>>
  getRecordingLink (workspaceId: string, id: string): Promise<RecordingLink | null>
  createRecordingLink (workspaceId: string, input: { recordingId: string, title: string, access?: LinkAccess, expiresAt?: string | null }, createdBy: string): Promise<RecordingLink>
  updateRecordingLink (workspaceId: string, id: string, patch: { title?: string, access?: LinkAccess, expiresAt?: string | null }): Promise<RecordingLink | null>
  deleteRecordingLink (workspaceId: string, id: string): Promise<boolean>
}

export const MAX_PAGE = 100
export const DEFAULT_PAGE = 20

/**
 * What a recording or link id looks like (newId: a prefix and base64url). Ids come from tool arguments and
 * become Redis keys (`rec:<id>`, `rec:<id>:links`), so anything else (`rec_x:links`, `*`) is not found
 * rather than read as another key.
 */
const ITEM_ID_RE = /^[A-Za-z0-9_-]{1,64}$/
const isItemId = (id: string): boolean => ITEM_ID_RE.test(id)

/** Cursor: an opaque offset into the newest-first index. */
export function encodeCursor (offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url')
}

export function decodeCursor (cursor: string | undefined): number {
  if (!cursor) return 0
  const m = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString())
  if (!m) throw new InvalidCursorError()
  return Number(m[1])
}

export class InvalidCursorError extends Error {
  constructor () { super('the cursor is not one this server issued; start again without a cursor') }
}

/** Raised when a link names a recording the workspace does not have. */
export class RecordingNotFoundError extends Error {
  constructor (id: string) { super(`no recording ${id} in this workspace`) }
}

function toRecording (h: Record<string, string>): Recording {
  return { id: h.id, workspaceId: h.workspace_id, title: h.title, durationSeconds: Number(h.duration_seconds), createdBy: h.created_by, createdAt: h.created_at }
}

export class RedisWorkspaceRepository implements WorkspaceRepository {
  constructor (private readonly redis: RedisClient, private readonly linkBaseUrl = 'https://share.example.com/r/') {}

  private toLink (h: Record<string, string>): RecordingLink {
    return {
      id: h.id,
      workspaceId: h.workspace_id,
      recordingId: h.recording_id,
      title: h.title,
      access: h.access as LinkAccess,
      expiresAt: h.expires_at || null,
      createdBy: h.created_by,
      createdAt: h.created_at,
      updatedAt: h.updated_at,
      url: `${this.linkBaseUrl}${h.id}`
    }
  }

  private async page<T> (index: string, page: PageRequest, load: (ids: string[]) => Promise<Array<T | null>>): Promise<Page<T>> {
    const limit = Math.min(Math.max(page.limit ?? DEFAULT_PAGE, 1), MAX_PAGE)
    const offset = decodeCursor(page.cursor)
    const ids = await this.redis.zrevrange(index, offset, offset + limit)
    const items = (await load(ids.slice(0, limit))).filter((x): x is T => x !== null)
    return { items, nextCursor: ids.length > limit ? encodeCursor(offset + limit) : null }
  }

  private async loadHashes (keyOf: (id: string) => string, ids: string[]): Promise<Array<Record<string, string>>> {
    if (ids.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const id of ids) pipeline.hgetall(keyOf(id))
    const results = await pipeline.exec()
    return (results ?? []).map(([err, value]) => {
      if (err) throw err
      return value as Record<string, string>
    })
  }

  async listRecordings (workspaceId: string, page: PageRequest): Promise<Page<Recording>> {
    return this.page(keys.workspaceRecordings(workspaceId), page, async (ids) =>
      (await this.loadHashes(keys.recording, ids)).map((h) => h.id && h.workspace_id === workspaceId ? toRecording(h) : null))
  }

  async getRecording (workspaceId: string, id: string): Promise<Recording | null> {
    if (!isItemId(id)) return null
    const h = await this.redis.hgetall(keys.recording(id))
    return h.id && h.workspace_id === workspaceId ? toRecording(h) : null
  }

  async createRecording (workspaceId: string, input: { title: string, durationSeconds: number }, createdBy: string): Promise<Recording> {
    const now = new Date()
    const rec: Recording = { id: newId('rec', 9), workspaceId, title: input.title, durationSeconds: input.durationSeconds, createdBy, createdAt: now.toISOString() }
    await this.redis.multi()
      .hset(keys.recording(rec.id), { id: rec.id, workspace_id: workspaceId, title: rec.title, duration_seconds: String(rec.durationSeconds), created_by: createdBy, created_at: rec.createdAt })
      .zadd(keys.workspaceRecordings(workspaceId), now.getTime(), rec.id)
      .exec()
    return rec
  }

  async deleteRecording (workspaceId: string, id: string): Promise<boolean> {
    const rec = await this.getRecording(workspaceId, id)
    if (!rec) return false
    const linkIds = await this.redis.zrange(keys.recordingLinks(id), 0, -1)
    const tx = this.redis.multi()
      .del(keys.recording(id), keys.recordingLinks(id))
      .zrem(keys.workspaceRecordings(workspaceId), id)
    for (const linkId of linkIds) tx.del(keys.link(linkId)).zrem(keys.workspaceLinks(workspaceId), linkId)
    await tx.exec()
    return true
  }

  async listRecordingLinks (workspaceId: string, page: PageRequest & { recordingId?: string }): Promise<Page<RecordingLink>> {
    if (page.recordingId !== undefined && !isItemId(page.recordingId)) return { items: [], nextCursor: null }
    const index = page.recordingId ? keys.recordingLinks(page.recordingId) : keys.workspaceLinks(workspaceId)
    return this.page(index, page, async (ids) =>
      (await this.loadHashes(keys.link, ids)).map((h) => h.id && h.workspace_id === workspaceId ? this.toLink(h) : null))
  }

  async getRecordingLink (workspaceId: string, id: string): Promise<RecordingLink | null> {
    if (!isItemId(id)) return null
    const h = await this.redis.hgetall(keys.link(id))
    return h.id && h.workspace_id === workspaceId ? this.toLink(h) : null
  }

  async createRecordingLink (workspaceId: string, input: { recordingId: string, title: string, access?: LinkAccess, expiresAt?: string | null }, createdBy: string): Promise<RecordingLink> {
    if (!await this.getRecording(workspaceId, input.recordingId)) throw new RecordingNotFoundError(input.recordingId)
    const now = new Date()
    const id = newId('lnk', 9)
    const fields = {
      id,
      workspace_id: workspaceId,
      recording_id: input.recordingId,
      title: input.title,
      access: input.access ?? 'workspace',
      expires_at: input.expiresAt ?? '',
      created_by: createdBy,
      created_at: now.toISOString(),
      updated_at: now.toISOString()
    }
    await this.redis.multi()
      .hset(keys.link(id), fields)
      .zadd(keys.workspaceLinks(workspaceId), now.getTime(), id)
      .zadd(keys.recordingLinks(input.recordingId), now.getTime(), id)
      .exec()
    return this.toLink(fields)
  }

  async updateRecordingLink (workspaceId: string, id: string, patch: { title?: string, access?: LinkAccess, expiresAt?: string | null }): Promise<RecordingLink | null> {
    const current = await this.getRecordingLink(workspaceId, id)
    if (!current) return null
    const fields: Record<string, string> = { updated_at: new Date().toISOString() }
    if (patch.title !== undefined) fields.title = patch.title
    if (patch.access !== undefined) fields.access = patch.access
    if (patch.expiresAt !== undefined) fields.expires_at = patch.expiresAt ?? ''
    await this.redis.hset(keys.link(id), fields)
    return this.getRecordingLink(workspaceId, id)
  }

  async deleteRecordingLink (workspaceId: string, id: string): Promise<boolean> {
    const link = await this.getRecordingLink(workspaceId, id)
    if (!link) return false
    await this.redis.multi()
      .del(keys.link(id))
      .zrem(keys.workspaceLinks(workspaceId), id)
      .zrem(keys.recordingLinks(link.recordingId), id)
      .exec()
    return true
  }
}
