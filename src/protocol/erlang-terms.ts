/**
 * Erlang term printing, as RabbitMQ's error texts show values (~p): reply texts that
 * clients and operators compare with RabbitMQ's print strings and binaries the same way.
 */
const ERL_ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: '\\\\',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x0b: '\\v',
  0x08: '\\b',
  0x0c: '\\f',
  0x1b: '\\e',
};

function printableLatin1(bytes: Buffer): boolean {
  for (const c of bytes) {
    if ((c >= 0x20 && c <= 0x7e) || c >= 0xa0 || (c >= 0x08 && c <= 0x0d) || c === 0x1b) continue;
    return false;
  }
  return true;
}

/** Quoted and escaped; bytes >= 0xA0 pass through, so UTF-8 text made only of them survives. */
function erlQuoted(bytes: Buffer): string {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    const esc = ERL_ESCAPES[bytes[i]];
    if (esc === undefined) continue;
    out.push(bytes.subarray(start, i), Buffer.from(esc, 'latin1'));
    start = i + 1;
  }
  out.push(bytes.subarray(start));
  return `"${Buffer.concat(out).toString('utf8')}"`;
}

/** ~p of an Erlang string (a list of bytes here): "..." when printable, else [1,2,3]. */
export function erlString(s: string | Buffer): string {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return printableLatin1(bytes) ? erlQuoted(bytes) : `[${[...bytes].join(',')}]`;
}

/** ~p of an Erlang binary: <<"...">> when printable, else <<1,2,3>>. */
export function erlBinary(s: string | Buffer): string {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  if (bytes.length === 0) return '<<>>';
  return printableLatin1(bytes) ? `<<${erlQuoted(bytes)}>>` : `<<${[...bytes].join(',')}>>`;
}

/** A string built by RabbitMQ from a prefix, a value's bytes and a suffix. */
export function erlFormatted(prefix: string, value: string | Buffer, suffix: string): string {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return erlString(Buffer.concat([Buffer.from(prefix, 'latin1'), v, Buffer.from(suffix, 'latin1')]));
}
