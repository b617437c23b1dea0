/**
 * The "Personal API keys" section in the browser: the form that creates a key (name, optional expiry) and
 * shows it once with a copy button, the new row in the list, and the revoke dialog confirmed by typing the
 * key's name; both call /v1/api-keys as the signed-in user.
 */
import { all, byId, call, closest, failure, UNREACHABLE } from './dom.ts'

/** What the page reads of a created key (the API's CreatedApiKey; views/page-script.ts checks they agree). */
export interface CreatedKey {
  id: string
  name: string
  key: string
  expires_at: string | null
}

/** The key being revoked, and the button that opened its dialog. */
interface Target {
  row: HTMLElement
  id: string
  name: string
  opener: HTMLElement
}

export function apiKeys (): void {
  const list = byId<HTMLUListElement>('keys')
  const empty = byId('keys-empty')
  const status = byId('keys-status')
  const form = byId<HTMLFormElement>('key-form')
  const nameInput = byId<HTMLInputElement>('key-name')
  const expiryInput = byId<HTMLInputElement>('key-expiry')
  const createButton = byId<HTMLButtonElement>('create-key')
  const formError = byId('key-error')
  const shown = byId('new-key')
  const shownValue = byId<HTMLInputElement>('new-key-value')
  const copyButton = byId<HTMLButtonElement>('copy-key')
  const dialog = byId<HTMLDialogElement>('key-dialog')
  const revokeForm = byId<HTMLFormElement>('key-revoke-form')
  const confirmInput = byId<HTMLInputElement>('key-confirm')
  const confirmButton = byId<HTMLButtonElement>('key-confirm-button')
  const revokeError = byId('key-revoke-error')
  let current: Target | null = null

  const text = (el: HTMLElement, value: string): void => { el.textContent = value }
  function esc (s: string): string { const d = document.createElement('div'); d.textContent = s; return d.innerHTML }

  form.addEventListener('submit', (e) => {
    e.preventDefault()
    formError.hidden = true
    const name = nameInput.value.trim()
    if (!name) { text(formError, 'Give the key a name.'); formError.hidden = false; nameInput.focus(); return }
    const body: { name: string, expires_at?: string } = { name }
    if (expiryInput.value) body.expires_at = new Date(expiryInput.value + 'T23:59:59Z').toISOString()
    createButton.disabled = true
    void create(body)
  })

  async function create (body: { name: string, expires_at?: string }): Promise<void> {
    let r
    try {
      r = await call<CreatedKey>('POST', 'v1/api-keys', body)
    } catch {
      createButton.disabled = false
      text(formError, UNREACHABLE)
      formError.hidden = false
      return
    }
    createButton.disabled = false
    if (!r.res.ok) { text(formError, failure(r, 'Creating the key failed. Try again.')); formError.hidden = false; return }
    const created = r.body as CreatedKey
    text(byId('new-key-name'), created.name)
    shownValue.value = created.key
    shown.hidden = false
    shownValue.focus()
    shownValue.select()
    const li = document.createElement('li')
    li.className = 'key'
    li.setAttribute('data-key-id', created.id)
    li.setAttribute('data-name', created.name)
    li.innerHTML = '<div class="info"><h3 class="name">' + esc(created.name) + '</h3><p class="meta"><span class="label">Created</span> today · <span class="label">Last used</span> never · <span class="label">Expires</span> ' + (created.expires_at ? esc(created.expires_at.slice(0, 10)) : 'never') + '</p></div>' +
      '<button type="button" class="secondary revoke-key" aria-label="Revoke ' + esc(created.name) + '">Revoke</button>'
    list.appendChild(li)
    list.hidden = false
    empty.hidden = true
    form.reset()
    text(status, 'Created the key ' + created.name + '.')
  }

  copyButton.addEventListener('click', () => {
    shownValue.select()
    const done = (): void => { text(copyButton, 'Copied') }
    // execCommand('copy'): the fallback where the Clipboard API is missing or refused
    if (typeof navigator.clipboard?.writeText === 'function') navigator.clipboard.writeText(shownValue.value).then(done, () => { document.execCommand('copy'); done() })
    else { document.execCommand('copy'); done() }
  })

  list.addEventListener('click', (e) => {
    const button = closest(e.target, '.revoke-key')
    if (!button) return
    const row = button.closest<HTMLElement>('.key')!
    const target: Target = { row, id: row.getAttribute('data-key-id') ?? '', name: row.getAttribute('data-name') ?? '', opener: button }
    current = target
    for (const el of all(dialog, '.key-target')) text(el, target.name)
    confirmInput.value = ''
    revokeError.hidden = true
    confirmButton.disabled = true
    dialog.showModal()
    confirmInput.focus()
  })
  const matches = (): boolean => current !== null && confirmInput.value.trim() === current.name
  confirmInput.addEventListener('input', () => { confirmButton.disabled = !matches(); revokeError.hidden = true })
  byId('key-cancel').addEventListener('click', () => { dialog.close('cancel') })
  dialog.addEventListener('close', () => {
    if (current && document.body.contains(current.opener)) current.opener.focus()
  })
  revokeForm.addEventListener('submit', (e) => {
    e.preventDefault()
    if (!matches() || current === null) return
    confirmButton.disabled = true
    void revoke(current)
  })

  async function revoke (target: Target): Promise<void> {
    let r
    try {
      r = await call('POST', `v1/api-keys/${encodeURIComponent(target.id)}/revoke`, { confirm: confirmInput.value.trim() })
    } catch {
      confirmButton.disabled = !matches()
      text(revokeError, UNREACHABLE)
      revokeError.hidden = false
      return
    }
    if (r.res.ok || r.res.status === 404) {
      target.row.remove()
      current = null
      dialog.close('revoked')
      text(status, 'The key ' + target.name + ' is revoked.')
      if (!list.querySelector('.key')) { list.hidden = true; empty.hidden = false }
      byId('keys-title').focus()
      return
    }
    confirmButton.disabled = !matches()
    text(revokeError, failure(r, 'Revoking failed. Try again.'))
    revokeError.hidden = false
  }
}
