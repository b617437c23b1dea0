// The account page's script as the page inlines it: the typed browser modules (src/browser/) bundled into
// one classic script, once per process, that cannot end its own <script> element; and the wire shape the
// browser reads of a created key is the API's own (a compile-time check: `npm run typecheck` fails when
// they drift apart).
import t from 'tap'
import { Script } from 'node:vm'
import type { Static } from '@sinclair/typebox'
import { UNSHOWABLE_SOURCE } from '@uspl/core/display-text'
import type { CreatedApiKey } from '../src/schemas.ts'
import type { CreatedKey } from '../src/browser/api-keys.ts'
import { bundlePageScript, pageScript } from '../src/views/page-script.ts'

// every field the page reads of POST /v1/api-keys is in the API's answer, with the type the page expects
const createdKeyIsTheApis: CreatedKey = {} as Static<typeof CreatedApiKey>
void createdKeyIsTheApis

t.test('one classic script, bundled once per process', async (t) => {
  const script = await pageScript()
  t.doesNotThrow(() => new Script(script, { filename: 'page.js' }), 'parses as a classic script (no import or export left)')
  t.notMatch(script, /<\/script/i, 'nothing in it ends the inline <script> element')
  t.match(script, /getElementById/, 'the page behaviour is in it')
  t.equal(pageScript(), pageScript(), 'later calls share the first bundle')
  t.equal(await bundlePageScript(), script, 'bundling again gives the same script')
})

t.test('the confirmation strips the characters the registration rule refuses, from that rule itself', async (t) => {
  const script = await pageScript()
  // the browser module imports typeableText from @uspl/core/display-text: its character class travels with it
  t.ok(script.includes(JSON.stringify(UNSHOWABLE_SOURCE)), 'the class of @uspl/core/display-text is in the bundle, as it is there')
})
