/** The API's wire shapes, as TypeBox schemas: they validate, serialize, and document (OpenAPI). */
import { Type, type Static } from '@sinclair/typebox'

export { ErrorBody, errors } from '@uspl/server/api-errors'

const Id = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })
/** a registered client id, or the https URL of a client metadata document (CIMD) */
const ClientId = Type.String({ pattern: '^([A-Za-z0-9_-]{1,64}|https://[^\\s]{1,504})$' })
const ClientKind = Type.Union([Type.Literal('registered'), Type.Literal('metadata_document')], { description: 'registered (RFC 7591), or identified by a metadata document at its https client_id (CIMD)' })
const Iso = Type.String({ format: 'date-time' })
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()])

export const Connection = Type.Object({
  grant_id: Type.String(),
  user_id: Type.String(),
  client_id: Type.String(),
  client_name: Type.String({ description: 'the registered client_name, or the client id when it registered none; what `confirm` must repeat' }),
  logo_uri: Nullable(Type.String()),
  redirect_host: Nullable(Type.String({ description: 'host of the first registered redirect URI' })),
  client_host: Nullable(Type.String({ description: 'for a metadata-document client, the host its document is served from (what identifies it)' })),
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

export const ConnectionList = Type.Object({
  items: Type.Array(Connection),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'operators without filters: pass as `cursor` for the next page; null on the last page (and for filtered or user lists, which come whole)' })
})

export const ConnectionQuery = Type.Object({
  user_id: Type.Optional(Type.String({ ...Id, description: 'operators: only this user' })),
  client_id: Type.Optional(Type.String({ ...ClientId, description: 'operators: only this client' })),
  cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,200}$', description: 'operators without filters: the `next_cursor` of the previous page' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100, description: 'operators without filters: connections per page' }))
})

export const GrantParams = Type.Object({ grantId: Id })
export const ClientParams = Type.Object({ clientId: ClientId })
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
  kind: ClientKind,
  host: Nullable(Type.String({ description: 'metadata-document clients: the host their document is served from' })),
  duplicate_of: Nullable(Type.String({ description: 'an identical earlier registration from the same address (registration hygiene); an unused duplicate expires soon' })),
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
  cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,80}$', description: 'the event_id of the last item of the previous page' }))
})

type Security = Array<Record<string, string[]>>
export const userOrOperator: Security = [{ userSession: [] }, { operatorKey: [] }]
export const operatorOnly: Security = [{ operatorKey: [] }]

export const ApiKeyInfo = Type.Object({
  id: Type.String(),
  name: Type.String(),
  kind: Type.Union([Type.Literal('personal'), Type.Literal('operator')], { description: 'personal: acts as its user on the workspace API; operator: this API and /introspect' }),
  user_id: Nullable(Type.String()),
  created_at: Iso,
  last_used_at: Nullable(Iso),
  expires_at: Nullable(Iso)
})
export const ApiKeyList = Type.Object({ items: Type.Array(ApiKeyInfo) })
export const ApiKeyQuery = Type.Object({
  user_id: Type.Optional(Type.String({ ...Id, description: 'operators: only this user\'s personal keys' }))
})
export const ApiKeyParams = Type.Object({ keyId: Id })
export const CreateApiKeyBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', description: 'what the key is for, e.g. "nightly export"' }),
  expires_at: Type.Optional(Nullable(Iso))
}, { additionalProperties: false })
export const CreatedApiKey = Type.Intersect([ApiKeyInfo, Type.Object({ key: Type.String({ description: 'the key itself (`uspl_…`), shown this once' }) })])
export const RevokeApiKeyBody = Type.Object({
  confirm: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: "the key's name, typed by the person revoking (required for users)" }))
}, { additionalProperties: false })
export const RevokeApiKeyResult = Type.Object({ id: Type.String(), status: Type.Literal('revoked') })
