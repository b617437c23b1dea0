/**
 * The error catalogue. Every error a service answers with is an HttpError: its HTTP status, its wire code,
 * its message and whether that message may be shown to the caller (`expose`), and what the answer's
 * headers say about it (Retry-After, a WWW-Authenticate challenge, Cache-Control: no-store). One subclass
 * per wire format, each the one its standard prescribes:
 * - OAuthError: RFC 6749 §5.2 (`error`, `error_description`), also RFC 7009/7662 and RFC 6750 bodies;
 * - RegistrationError: RFC 7591 §3.2.2 (same members, its own codes);
 * - ApiError: the REST APIs (`{ error: { code, message } }`, stable codes);
 * - RpcError: a JSON-RPC 2.0 error answered over HTTP (MCP Streamable HTTP), its numeric code;
 * - SecEventError: RFC 8935 §2.4 (`err`, `description`), the Shared Signals push endpoint.
 * How each is written on the wire lives in wire.ts, and nowhere else.
 */
export * from './errors.ts'
export * from './wire.ts'
export { isRedisUnavailable } from './redis.ts'
