/** Big-endian 64-bit unsigned integers within JavaScript's safe range, as the formats in docs/ store them. */

export function putU64(buf: Buffer, at: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), at);
  buf.writeUInt32BE(v >>> 0, at + 4);
}

export function getU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}
