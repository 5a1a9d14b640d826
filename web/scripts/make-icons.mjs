// Draws kai's icon (a ring with a spark on a dark rounded square) as the PNGs the manifest names.
import { writeFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

function png(size, pixel) {
  const rows = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4);
    for (let x = 0; x < size; x++) row.set(pixel((x + 0.5) / size, (y + 0.5) / size), 1 + x * 4);
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const background = [10, 10, 10, 255];
const foreground = [250, 250, 250, 255];
const accent = [56, 189, 248, 255];
const clear = [0, 0, 0, 0];

function icon(maskable) {
  const radius = maskable ? 0 : 0.2;
  const scale = maskable ? 0.7 : 1;
  return (u, v) => {
    const dx = Math.max(Math.abs(u - 0.5) - (0.5 - radius), 0);
    const dy = Math.max(Math.abs(v - 0.5) - (0.5 - radius), 0);
    if (radius > 0 && Math.hypot(dx, dy) > radius) return clear;
    const x = (u - 0.5) / scale;
    const y = (v - 0.5) / scale;
    const r = Math.hypot(x, y);
    if (Math.hypot(x - 0.17, y + 0.17) < 0.08) return accent;
    if (r > 0.22 && r < 0.32) return foreground;
    return background;
  };
}

writeFileSync("public/icon-192.png", png(192, icon(false)));
writeFileSync("public/icon-512.png", png(512, icon(false)));
writeFileSync("public/icon-maskable-512.png", png(512, icon(true)));
writeFileSync("public/apple-touch-icon.png", png(180, icon(true)));
