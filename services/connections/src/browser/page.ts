/**
 * The account page's script (bundled by views/page-script.ts into one script that the page inlines under
 * its CSP nonce): the Connected Apps list, then the personal API keys section.
 */
import { connectedApps } from './connected-apps.ts'
import { apiKeys } from './api-keys.ts'

connectedApps()
apiKeys()
