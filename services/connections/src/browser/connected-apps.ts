/**
 * The Connected Apps list in the browser: logos that fail to load fall back to the initial; each row's
 * actions menu (WAI-ARIA menu button: Enter, Space, arrow keys, Home, End, Escape, Tab); the confirmation
 * dialog (type the app's name, compared as typeable text); the revocation through the API; and the row
 * going away when it succeeds, focus moving to the next row (or the title).
 */
import { typeableText } from '@uspl/core/display-text'
import { all, byId, call, closest, failure, UNREACHABLE } from './dom.ts'

/** The row being revoked, and where focus returns when the dialog closes. */
interface Target {
  row: HTMLElement
  name: string
  grantId: string
  opener: HTMLElement | null
}

export function connectedApps (): void {
  const list = byId<HTMLUListElement>('apps')
  const empty = byId('empty')
  const status = byId('status')
  const dialog = byId<HTMLDialogElement>('revoke-dialog')
  const form = byId<HTMLFormElement>('revoke-form')
  const input = byId<HTMLInputElement>('confirm-input')
  const confirmButton = byId<HTMLButtonElement>('confirm-button')
  const cancelButton = byId<HTMLButtonElement>('cancel-button')
  const errorBox = byId('revoke-error')
  let current: Target | null = null
  let busy = false

  // logos that fail to load fall back to the initial underneath
  for (const img of all<HTMLImageElement>(document, '.logo img')) {
    const broken = (): void => { img.classList.add('broken') }
    if (img.complete && img.naturalWidth === 0) broken()
    img.addEventListener('error', broken)
  }

  const items = (menu: HTMLElement): HTMLElement[] => all(menu, '[role="menuitem"]')
  const menuOf = (button: HTMLElement): HTMLElement => byId(button.getAttribute('aria-controls') ?? '')

  function openMenu (button: HTMLElement, focusLast: boolean): void {
    closeMenus(button)
    const menu = menuOf(button)
    menu.hidden = false
    button.setAttribute('aria-expanded', 'true')
    const entries = items(menu)
    entries[focusLast ? entries.length - 1 : 0].focus()
  }
  function closeMenu (button: HTMLElement, restoreFocus: boolean): void {
    const menu = menuOf(button)
    if (menu.hidden) return
    menu.hidden = true
    button.setAttribute('aria-expanded', 'false')
    if (restoreFocus) button.focus()
  }
  function closeMenus (except: HTMLElement | null): void {
    for (const b of all(document, '.menu-button[aria-expanded="true"]')) {
      if (b !== except) closeMenu(b, false)
    }
  }

  list.addEventListener('click', (e) => {
    const button = closest(e.target, '.menu-button')
    if (button) {
      if (button.getAttribute('aria-expanded') === 'true') closeMenu(button, true)
      else openMenu(button, false)
      return
    }
    const item = closest(e.target, '[data-action="revoke"]')
    if (item) {
      const row = item.closest<HTMLElement>('.app')!
      const opener = row.querySelector<HTMLElement>('.menu-button')!
      closeMenu(opener, false)
      openDialog(row, opener)
    }
  })

  list.addEventListener('keydown', (e) => {
    const button = closest(e.target, '.menu-button')
    if (button) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault()
        openMenu(button, e.key === 'ArrowUp')
      } else if (e.key === 'Escape') {
        closeMenu(button, true)
      }
      return
    }
    const item = closest(e.target, '[role="menuitem"]')
    if (!item) return
    const menu = item.closest<HTMLElement>('[role="menu"]')!
    const opener = byId(menu.getAttribute('aria-labelledby') ?? '')
    const entries = items(menu)
    const i = entries.indexOf(item)
    switch (e.key) {
      case 'ArrowDown': e.preventDefault(); entries[(i + 1) % entries.length].focus(); break
      case 'ArrowUp': e.preventDefault(); entries[(i - 1 + entries.length) % entries.length].focus(); break
      case 'Home': e.preventDefault(); entries[0].focus(); break
      case 'End': e.preventDefault(); entries[entries.length - 1].focus(); break
      case 'Escape': e.preventDefault(); closeMenu(opener, true); break
      case 'Tab': closeMenu(opener, false); break
    }
  })

  document.addEventListener('click', (e) => {
    if (!closest(e.target, '.actions')) closeMenus(null)
  })

  function setNames (name: string): void {
    for (const el of all(dialog, '.target-name')) el.textContent = name
  }

  function openDialog (row: HTMLElement, opener: HTMLElement): void {
    current = { row, name: row.getAttribute('data-name') ?? '', grantId: row.getAttribute('data-grant-id') ?? '', opener }
    setNames(current.name)
    input.value = ''
    errorBox.hidden = true
    errorBox.textContent = ''
    confirmButton.disabled = true
    dialog.showModal()
    input.focus()
  }

  // what a person can type: names stored before registration refused invisible characters compare without them
  const matches = (): boolean => current !== null && typeableText(input.value) === typeableText(current.name)

  input.addEventListener('input', () => {
    confirmButton.disabled = busy || !matches()
    if (!errorBox.hidden) { errorBox.hidden = true; errorBox.textContent = '' }
  })

  cancelButton.addEventListener('click', () => { dialog.close('cancel') })

  dialog.addEventListener('close', () => {
    if (current?.opener && document.body.contains(current.opener)) current.opener.focus()
    if (!busy) current = null
  })

  function fail (message: string): void {
    errorBox.textContent = message
    errorBox.hidden = false
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault()
    if (busy || !matches() || current === null) return
    void revoke(current)
  })

  async function revoke (target: Target): Promise<void> {
    busy = true
    confirmButton.disabled = true
    confirmButton.textContent = 'Revoking…'
    let r
    try {
      r = await call('POST', `v1/connections/${encodeURIComponent(target.grantId)}/revoke`, { confirm: input.value.trim() })
    } catch {
      busy = false
      confirmButton.textContent = 'Revoke access'
      confirmButton.disabled = !matches()
      fail(UNREACHABLE)
      return
    }
    busy = false
    confirmButton.textContent = 'Revoke access'
    if (r.res.ok || r.res.status === 404) {
      removeRow(target)
      return
    }
    confirmButton.disabled = !matches()
    fail(failure(r, 'Revoking failed. Try again.'))
  }

  function removeRow (target: Target): void {
    const rows = all(list, '.app')
    const next = rows[rows.indexOf(target.row) + 1] || rows[rows.indexOf(target.row) - 1] || null
    target.opener = next ? next.querySelector<HTMLElement>('.menu-button') : null
    current = target
    target.row.remove()
    dialog.close('revoked')
    const who = document.createElement('bdi')
    who.textContent = target.name
    status.replaceChildren(who, ' no longer has access to your account.')
    if (!list.querySelector('.app')) {
      list.hidden = true
      empty.hidden = false
    }
    if (!target.opener) byId('title').focus()
    current = null
  }
}
