import sharp from 'sharp';

/** Store `upright` so that a viewer applying EXIF orientation `n` shows it upright again. */
export async function withOrientation(upright: Buffer, n: number): Promise<Buffer> {
  // Rotation and mirroring in separate pipelines: within one, sharp mirrors before it rotates.
  const rotation = n === 3 ? 180 : n === 6 ? 270 : n === 5 || n === 7 || n === 8 ? 90 : 0;
  const rotated = await sharp(upright).rotate(rotation).toBuffer();
  const mirrored = n === 2 || n === 5 ? sharp(rotated).flop() : n === 4 || n === 7 ? sharp(rotated).flip() : sharp(rotated);
  return mirrored.withMetadata({ orientation: n }).jpeg({ quality: 95 }).toBuffer();
}
