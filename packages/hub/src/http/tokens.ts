export const HUB = Symbol('Hub');
export const ROLES_KEY = 'facefleet:roles';

/** What the multer interceptors hand over (memory storage): the parts we use. */
export interface UploadedFile {
  originalname: string;
  buffer: Buffer;
  size: number;
}
