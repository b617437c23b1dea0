/**
 * Strings that people read (a client's name, software id, contacts) and may have to type back (the
 * Connected Apps revoke confirmation). Refused at registration: control characters (C0, DEL, C1, line
 * and paragraph separators), bidirectional controls (they reorder what follows, "…tnuocca ruoy"), and
 * invisible format characters (zero-width space/joiners, word joiner, BOM, soft hyphen, tag characters,
 * Hangul fillers): with them a name can look like another or cannot be typed. Pages still isolate every
 * untrusted string (`<bdi>`), for names stored before this rule.
 */

/** Characters a shown name must not contain (one class, also embedded in the Connected Apps script). */
export const UNSHOWABLE_SOURCE = '[\\p{Cc}\\p{Cf}\\p{Cs}\\p{Co}\\p{Zl}\\p{Zp}\\u115F\\u1160\\u3164\\uFFA0]'

const UNSHOWABLE = new RegExp(UNSHOWABLE_SOURCE, 'u')
const UNSHOWABLE_ALL = new RegExp(UNSHOWABLE_SOURCE, 'gu')

/** Why a string cannot be shown as it is (naming the first offending code point), or null when it can. */
export function displayTextProblem (value: string): string | null {
  const m = UNSHOWABLE.exec(value)
  if (!m) return null
  const cp = m[0].codePointAt(0) as number
  return `contains U+${cp.toString(16).toUpperCase().padStart(4, '0')} (a control, bidirectional or invisible character)`
}

/** What a person can type of a string: without the characters above, trimmed. */
export function typeableText (value: string): string {
  return value.replace(UNSHOWABLE_ALL, '').trim()
}
