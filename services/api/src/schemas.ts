/** The workspace API's wire shapes, as TypeBox schemas: they validate, serialize, and document (OpenAPI). */
import { Type, type Static } from '@sinclair/typebox'
import { MAX_PAGE, DEFAULT_PAGE, type Recording as RecordingModel, type RecordingLink as LinkModel } from '@uspl/core'

export { errors } from '@uspl/server/api-errors'

const Id = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })
const Iso = Type.String({ format: 'date-time' })

export const Role = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member')], { description: 'the caller\'s role in the workspace' })
export const Access = Type.Union([Type.Literal('workspace'), Type.Literal('public')], { description: '"workspace": members only; "public": anyone with the URL' })

export const Workspace = Type.Object({ id: Type.String(), name: Type.String(), role: Role }, { $id: 'Workspace' })
export const WorkspaceList = Type.Object({ items: Type.Array(Type.Ref('Workspace')) })

export const Recording = Type.Object({
  id: Type.String(),
  workspace_id: Type.String(),
  title: Type.String(),
  duration_seconds: Type.Number(),
  created_by: Type.String({ description: 'the user id of its creator' }),
  created_at: Iso
}, { $id: 'Recording' })

export const Link = Type.Object({
  id: Type.String(),
  workspace_id: Type.String(),
  recording_id: Type.String(),
  title: Type.String(),
  access: Access,
  expires_at: Type.Union([Iso, Type.Null()]),
  created_by: Type.String(),
  created_at: Iso,
  updated_at: Iso,
  url: Type.String()
}, { $id: 'Link' })

const nextCursor = Type.Union([Type.String(), Type.Null()], { description: 'pass as `cursor` for the next page; null on the last' })
export const RecordingPage = Type.Object({ items: Type.Array(Type.Ref('Recording')), next_cursor: nextCursor })
export const LinkPage = Type.Object({ items: Type.Array(Type.Ref('Link')), next_cursor: nextCursor })

export const PageQuery = Type.Object({
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'the `next_cursor` of the previous page' })),
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE })
}, { additionalProperties: false })
export type PageQuery = Static<typeof PageQuery>

export const WorkspaceParams = Type.Object({ workspaceId: Id })
export const RecordingParams = Type.Object({ workspaceId: Id, recordingId: Id })
export const LinkParams = Type.Object({ workspaceId: Id, linkId: Id })

const Title = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S', description: 'shown to people who open the link' })
export const CreateLink = Type.Object({
  title: Title,
  access: Type.Optional(Access),
  expires_at: Type.Optional(Type.Union([Iso, Type.Null()], { description: 'when the link stops working; omitted or null: never' }))
}, { additionalProperties: false })
export const UpdateLink = Type.Object({
  title: Type.Optional(Title),
  access: Type.Optional(Access),
  expires_at: Type.Optional(Type.Union([Iso, Type.Null()], { description: 'null removes the expiry' }))
}, { additionalProperties: false, minProperties: 1 })

export const Deleted = Type.Object({ id: Type.String(), deleted: Type.Literal(true) })

export function recordingBody (r: RecordingModel): Static<typeof Recording> {
  return { id: r.id, workspace_id: r.workspaceId, title: r.title, duration_seconds: r.durationSeconds, created_by: r.createdBy, created_at: r.createdAt }
}

export function linkBody (l: LinkModel): Static<typeof Link> {
  return {
    id: l.id,
    workspace_id: l.workspaceId,
    recording_id: l.recordingId,
    title: l.title,
    access: l.access,
    expires_at: l.expiresAt,
    created_by: l.createdBy,
    created_at: l.createdAt,
    updated_at: l.updatedAt,
    url: l.url
  }
}

export const models = [Workspace, Recording, Link]
