/**
 * `wsmod/protocol`: RFC 6455 facts a user of the library may need, starting with the close codes
 * (which exist, which may be sent, what each means).
 */
export { CLOSE_CODES, CloseCode, isValidCloseCode, type CloseCodeInfo } from './close-codes.ts';
