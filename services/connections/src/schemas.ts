/** The API's wire shapes, as TypeBox schemas: they validate, serialize, and document (OpenAPI). */
import { Type, type Static } from '@sinclair/typebox'

export const ErrorBody = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() })
}, { $id: 'Error', description: 'every error: a stable code and a message' })

const errorRef = Type.Ref('Error')
export const errors = (...codes: number[]): Record<number, typeof errorRef> =>
  Object.fromEntries(codes.map((c) => [c, errorRef]))

const Id = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })
const Iso = Type.String({ format: 'date-time' })
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()])

export const Connection = Type.Object({
  grant_id: Type.String(),
  user_id: Type.String(),
  client_id: Type.String(),
  client_name: Type.String({ description: 'the registered client_name, or the client id when it registered none; what `confirm` must repeat' }),
  logo_uri: Nullable(Type.String()),
  redirect_host: Nullable(Type.String({ description: 'host of the first registered redirect URI' })),
  scopes: Type.Array(Type.String()),
  authorized_at: Iso,
  last_used_at: Iso,
  open_sessions: Type.Integer({ description: 'MCP sessions the gateway holds open for this grant' }),
  managed_by: Type.Union([Type.Object({
    issuer_id: Type.String(),
    issuer: Type.String({ description: 'the enterprise IdP (ID-JAG issuer) that granted this access' }),
    name: Type.String()
  }), Type.Null()], { description: 'set when the company\'s identity provider manages this access (ID-JAG); null for a user\'s own consent' })
})
export type Connection = Static<typeof Connection>

export const ConnectionList = Type.Object({ items: Type.Array(Connection) })

export const ConnectionQuery = Type.Object({
  user_id: Type.Optional(Type.String({ ...Id, description: 'operators: only this user' })),
  client_id: Type.Optional(Type.String({ ...Id, description: 'operators: only this client' }))
})

export const GrantParams = Type.Object({ grantId: Id })
export const ClientParams = Type.Object({ clientId: Id })
export const UserParams = Type.Object({ userId: Id })

export const RevokeGrantBody = Type.Object({
  confirm: Type.String({ minLength: 1, maxLength: 256, description: "the application's name, typed by the person revoking" })
}, { additionalProperties: false })

export const RevokeGrantResult = Type.Object({
  grant_id: Type.String(),
  status: Type.Union([Type.Literal('revoked'), Type.Literal('already_revoked')]),
  revoked_at: Iso,
  sessions_closed: Type.Integer({ description: 'open MCP sessions of the grant at the moment it was revoked (0 when it already was)' }),
  event_id: Nullable(Type.String())
})

export const BulkRevokeResult = Type.Object({
  status: Type.Union([Type.Literal('revoked'), Type.Literal('noop')], { description: 'noop: nothing was left to revoke' }),
  revoked_at: Nullable(Iso),
  grants_revoked: Type.Integer(),
  sessions_closed: Type.Integer(),
  event_id: Nullable(Type.String())
})

export const ClientRevokeResult = Type.Intersect([Type.Object({ client_id: Type.String(), disabled: Type.Boolean() }), BulkRevokeResult])
export const UserRevokeResult = Type.Intersect([Type.Object({ user_id: Type.String() }), BulkRevokeResult])

export const ClientInfo = Type.Object({
  client_id: Type.String(),
  client_name: Nullable(Type.String()),
  logo_uri: Nullable(Type.String()),
  redirect_uris: Type.Array(Type.String()),
  issued_at: Iso,
  last_used_at: Iso,
  disabled_at: Nullable(Iso),
  active_grants: Type.Integer()
})
export const ClientList = Type.Object({ items: Type.Array(ClientInfo) })
export const EnableResult = Type.Object({ client_id: Type.String(), disabled: Type.Boolean() })

export const Actor = Type.Object({ type: Type.String(), id: Type.String() })
export const AuditItem = Type.Object({
  event_id: Type.String(),
  at: Iso,
  actor: Actor,
  path: Type.String({ description: 'which path revoked: connections_user, connections_operator, client_disable, user_revoke, oauth_revoke, refresh_token_reuse, …' }),
  scope: Type.String(),
  target: Type.String(),
  grant_ids: Type.Array(Type.String()),
  client_id: Nullable(Type.String()),
  user_id: Nullable(Type.String())
})
export const AuditPage = Type.Object({
  items: Type.Array(AuditItem),
  next_cursor: Nullable(Type.String({ description: 'pass as `cursor` for the next (older) page' }))
})
export const AuditQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  cursor: Type.Optional(Type.String({ pattern: '^[0-9]+-[0-9]+$' }))
})

type Security = Array<Record<string, string[]>>
export const userOrOperator: Security = [{ userSession: [] }, { operatorKey: [] }]
export const operatorOnly: Security = [{ operatorKey: [] }]
