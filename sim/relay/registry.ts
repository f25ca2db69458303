/**
 * The relay's in-memory registry of targets (rust-supervisor-relay src/registry.rs:159-602): the checks a
 * registration must pass, with the relay's error codes. Nothing is persisted: a restarted relay starts empty and
 * learns each target again at its next heartbeat.
 */
import { isAbsolute } from 'node:path';

export interface RelayError {
  code: string;
  stage: string;
  message: string;
  retryable: boolean;
}

export interface RegistrationRequest {
  target_id: string;
  display_name: string;
  ipc_path: string;
  lease_seconds: number;
  supported_commands: { name: string; idempotent: boolean; timeout_seconds: number }[];
}

interface Entry {
  request: RegistrationRequest;
  expiresAt: number;
}

const FIELDS = ['target_id', 'display_name', 'ipc_path', 'lease_seconds', 'supported_commands'];

export class Registry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly allowedPrefixes: string[],
    private readonly maxLeaseSeconds: number,
  ) {}

  /** decode_registration_line: serde with deny_unknown_fields (registration.rs:59-114). */
  decode(line: string): RegistrationRequest | RelayError {
    const bad = (why: string): RelayError => ({
      code: 'invalid_registration_json',
      stage: 'registration_parse',
      message: `registration line could not be parsed: ${why}`,
      retryable: false,
    });
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return bad(line === '' ? 'EOF while parsing a value at line 1 column 0' : 'expected value at line 1 column 1');
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad('invalid type, expected struct RegistrationRequest');
    const o = v as Record<string, unknown>;
    const unknown = Object.keys(o).find((k) => !FIELDS.includes(k));
    if (unknown !== undefined)
      return bad(`unknown field \`${unknown}\`, expected one of ${FIELDS.map((f) => `\`${f}\``).join(', ')}`);
    const missing = FIELDS.find((f) => !(f in o));
    if (missing !== undefined) return bad(`missing field \`${missing}\``);
    const ok =
      typeof o.target_id === 'string' &&
      typeof o.display_name === 'string' &&
      typeof o.ipc_path === 'string' &&
      Number.isInteger(o.lease_seconds) &&
      Array.isArray(o.supported_commands);
    return ok ? (o as unknown as RegistrationRequest) : bad('invalid type');
  }

  /** register (registry.rs:159-230) with validate_request (:548-602). */
  register(r: RegistrationRequest): { target_id: string } | RelayError {
    const err = (code: string, message: string): RelayError => ({ code, stage: 'registration', message, retryable: false });
    if (r.target_id.trim() === '') return err('empty_target_id', 'target id must not be empty');
    if (!isAbsolute(r.ipc_path)) return err('relative_ipc_path', 'IPC path must be absolute');
    if (!this.allowedPrefixes.some((p) => r.ipc_path.startsWith(p)))
      return err('ipc_path_not_allowed', 'IPC path is outside allowed prefixes');
    if (r.lease_seconds <= 0 || r.lease_seconds > this.maxLeaseSeconds) {
      return err('invalid_lease_seconds', 'lease seconds must be positive and must not exceed policy max');
    }
    if (r.supported_commands.some((c) => c.name.trim() === '' || c.timeout_seconds === 0)) {
      return err('unsupported_command_schema', 'supported command name and timeout must be valid');
    }
    for (const [id, e] of this.entries) {
      if (id !== r.target_id && e.request.ipc_path === r.ipc_path && e.expiresAt > Date.now()) {
        return err('ipc_path_conflict', 'ipc path is already used by another target');
      }
    }
    this.entries.set(r.target_id, { request: r, expiresAt: Date.now() + r.lease_seconds * 1000 });
    return { target_id: r.target_id };
  }
}
