import sharp from 'sharp';
import type { Box, RgbImage } from '@facefleet/vision';

export interface Label {
  box: Box;
  text: string;
  known: boolean;
}

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Write a JPEG of the image with a box and a caption per face (green: known, orange: unknown). */
export async function writeAnnotated(image: RgbImage, labels: readonly Label[], path: string): Promise<void> {
  const stroke = Math.max(2, Math.round(Math.max(image.width, image.height) / 400));
  const font = Math.max(12, Math.round(Math.max(image.width, image.height) / 60));
  const shapes = labels
    .map((l) => {
      const colour = l.known ? '#22c55e' : '#f97316';
      const { x, y, width, height } = l.box;
      const ty = y > font + 4 ? y - 4 : y + height + font;
      return `<rect x="${x}" y="${y}" width="${width}" height="${height}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>` +
        `<text x="${x}" y="${ty}" font-family="sans-serif" font-size="${font}" fill="${colour}" stroke="black" stroke-width="0.6">${escape(l.text)}</text>`;
    })
    .join('');
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">${shapes}</svg>`);
  await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .composite([{ input: svg, top: 0, left: 0 }])
    .jpeg({ quality: 85 })
    .toFile(path);
}
