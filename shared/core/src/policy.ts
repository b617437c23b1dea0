/**
 * The seed's role rules, written once, and the workspace service both doors call (the MCP tools in
 * services/gateway/src/tools and the REST routes of services/api): every operation is the same steps,
 *
 *   1. membership: the caller's role in the workspace, read at call time (a role change applies to the next
 *      call of either door); a non-member learns nothing about the workspace (not found, not forbidden);
 *   2. the item, read through the repository and scoped by workspace (another workspace's id is not found);
 *   3. authorize(role, action, item, caller): the table below;
 *   4. the action itself.
 *
 * A failed step throws a WorkspaceError carrying its kind (not_found, forbidden, invalid) and a sentence a
 * person understands; each door maps the kind to its wire form (a tool error, a 404/403/400) and shows the
 * same sentence.
 */
import type { AccountStore, Role } from './accounts.ts'
import {
  InvalidCursorError, RecordingNotFoundError,
  type LinkAccess, type Page, type PageRequest, type Recording, type RecordingLink, type WorkspaceRepository
} from './workspace-data.ts'

export type Action =
  | 'recording.list' | 'recording.read' | 'recording.delete'
  | 'link.list' | 'link.read' | 'link.create' | 'link.update' | 'link.delete'

/** Who may do what: any member reads, creates and updates links; deleting needs owner, admin or being the creator. */
const RULES: Record<Action, 'member' | 'manager_or_creator'> = {
  'recording.list': 'member',
  'recording.read': 'member',
  'recording.delete': 'manager_or_creator',
  'link.list': 'member',
  'link.read': 'member',
  'link.create': 'member',
  'link.update': 'member',
  'link.delete': 'manager_or_creator'
}

/** True when a member with `role` may do `action` on `resource` (its creator matters for deletes). */
export function authorize (role: Role, action: Action, resource: { createdBy: string } | null, actorId: string): boolean {
  if (RULES[action] === 'member') return true
  return role === 'owner' || role === 'admin' || (resource !== null && resource.createdBy === actorId)
}

export type WorkspaceErrorKind = 'not_found' | 'forbidden' | 'invalid'

export class WorkspaceError extends Error {
  constructor (readonly kind: WorkspaceErrorKind, message: string, readonly field?: string) {
    super(message)
    this.name = 'WorkspaceError'
  }
}

export interface LinkInput { recordingId: string, title: string, access?: LinkAccess, expiresAt?: string | null }
export interface LinkPatch { title?: string, access?: LinkAccess, expiresAt?: string | null }

export interface WorkspaceView { id: string, name: string, role: Role }

/** What the service reads of memberships: an AccountStore, or a cached view of the same records (services/api). */
export interface Memberships {
  getRole: (workspaceId: string, userId: string) => Role | null | Promise<Role | null>
  listMemberships: AccountStore['listMemberships']
}

export class WorkspaceService {
  constructor (private readonly accounts: Memberships, private readonly repo: WorkspaceRepository) {}

  async listWorkspaces (userId: string): Promise<WorkspaceView[]> {
    const memberships = await this.accounts.listMemberships(userId)
    return memberships.map((m) => ({ id: m.workspace.id, name: m.workspace.name, role: m.role }))
  }

  /** Step 1: the caller's role, fresh. */
  async roleOf (workspaceId: string, userId: string): Promise<Role> {
    const role = await this.accounts.getRole(workspaceId, userId)
    if (!role) throw new WorkspaceError('not_found', `Workspace ${workspaceId} was not found among your workspaces.`)
    return role
  }

  listRecordings (userId: string, workspaceId: string, page: PageRequest): Promise<Page<Recording>> {
    return this.guard(async () => {
      await this.roleOf(workspaceId, userId)
      return this.repo.listRecordings(workspaceId, page)
    })
  }

  getRecording (userId: string, workspaceId: string, recordingId: string): Promise<Recording> {
    return this.guard(async () => {
      await this.roleOf(workspaceId, userId)
      return this.recording(workspaceId, recordingId)
    })
  }

  deleteRecording (userId: string, workspaceId: string, recordingId: string): Promise<Recording> {
    return this.guard(async () => {
      const role = await this.roleOf(workspaceId, userId)
      const recording = await this.recording(workspaceId, recordingId)
      if (!authorize(role, 'recording.delete', recording, userId)) {
        throw new WorkspaceError('forbidden', `You cannot delete "${recording.title}": deleting a recording needs the owner or admin role in this workspace, or being its creator (your role: ${role}).`)
      }
      await this.repo.deleteRecording(workspaceId, recordingId)
      return recording
    })
  }

  listLinks (userId: string, workspaceId: string, page: PageRequest & { recordingId?: string }): Promise<Page<RecordingLink>> {
    return this.guard(async () => {
      await this.roleOf(workspaceId, userId)
      if (page.recordingId !== undefined) await this.recording(workspaceId, page.recordingId)
      return this.repo.listRecordingLinks(workspaceId, page)
    })
  }

  getLink (userId: string, workspaceId: string, linkId: string): Promise<RecordingLink> {
    return this.guard(async () => {
      await this.roleOf(workspaceId, userId)
      return this.link(workspaceId, linkId)
    })
  }

  createLink (userId: string, workspaceId: string, input: LinkInput): Promise<RecordingLink> {
    return this.guard(async () => {
      await this.roleOf(workspaceId, userId)
      return this.repo.createRecordingLink(workspaceId, input, userId)
    })
  }

  updateLink (userId: string, workspaceId: string, linkId: string, patch: LinkPatch): Promise<RecordingLink> {
    return this.guard(async () => {
      await this.roleOf(workspaceId, userId)
      if (patch.title === undefined && patch.access === undefined && patch.expiresAt === undefined) {
        throw new WorkspaceError('invalid', 'Nothing to change: give at least one of title, access or expires_at.')
      }
      const link = await this.repo.updateRecordingLink(workspaceId, linkId, patch)
      if (!link) throw this.noLink(workspaceId, linkId)
      return link
    })
  }

  deleteLink (userId: string, workspaceId: string, linkId: string): Promise<RecordingLink> {
    return this.guard(async () => {
      const role = await this.roleOf(workspaceId, userId)
      const link = await this.link(workspaceId, linkId)
      if (!authorize(role, 'link.delete', link, userId)) {
        throw new WorkspaceError('forbidden', `You cannot delete the link "${link.title}": deleting a link needs the owner or admin role in this workspace, or being its creator (your role: ${role}).`)
      }
      await this.repo.deleteRecordingLink(workspaceId, linkId)
      return link
    })
  }

  private async recording (workspaceId: string, id: string): Promise<Recording> {
    const recording = await this.repo.getRecording(workspaceId, id)
    if (!recording) throw new WorkspaceError('not_found', `No recording ${id} in workspace ${workspaceId}.`)
    return recording
  }

  private async link (workspaceId: string, id: string): Promise<RecordingLink> {
    const link = await this.repo.getRecordingLink(workspaceId, id)
    if (!link) throw this.noLink(workspaceId, id)
    return link
  }

  private noLink (workspaceId: string, id: string): WorkspaceError {
    return new WorkspaceError('not_found', `No recording link ${id} in workspace ${workspaceId}.`)
  }

  /** The repository's expected failures, as WorkspaceErrors (anything else is not ours to name). */
  private async guard<T> (body: () => Promise<T>): Promise<T> {
    try {
      return await body()
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new WorkspaceError('invalid', err.message, 'cursor')
      if (err instanceof RecordingNotFoundError) throw new WorkspaceError('not_found', err.message, 'recording_id')
      throw err
    }
  }
}
